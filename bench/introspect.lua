-- wrk script: POST /oauth/introspect about TOKEN, authenticated with the Bearer credential
-- AUTH (an administrator's key holds `introspect`).
wrk.method = "POST"
wrk.body = "token=" .. os.getenv("TOKEN")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("AUTH")
