-- Token exchange (RFC 8693) of the API key KEY by its holder, no client authentication.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange" ..
  "&subject_token_type=urn%3Agatehouse%3Aparams%3Aoauth%3Atoken-type%3Aapi_key" ..
  "&subject_token=" .. os.getenv("KEY")
