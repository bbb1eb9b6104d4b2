-- wrk script: full authorization-code flows by a signed-in user who approved the app before.
-- Each flow is GET /oauth/authorize (session cookie; answered 303 with a code) then
-- POST /oauth/token (code + PKCE verifier, client_secret_basic). Codes go into a queue that
-- any connection may redeem, so four connections keep both endpoints busy.
-- Env: COOKIE ("name=value" of the session), BASIC (base64 id:secret), AUTHORIZE_PATH
-- (path and query of the authorization request), REDIRECT_URI, VERIFIER.
local cookie = os.getenv("COOKIE")
local basic = os.getenv("BASIC")
local authorize_path = os.getenv("AUTHORIZE_PATH")
local redirect_uri = os.getenv("REDIRECT_URI")
local verifier = os.getenv("VERIFIER")
local codes = {}
flows, failures = 0, 0
local threads = {}

-- done() runs in another Lua state: it reads each thread's counters.
setup = function(thread)
  table.insert(threads, thread)
end

local function urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

request = function()
  local code = table.remove(codes)
  if code then
    return wrk.format("POST", "/oauth/token", {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Authorization"] = "Basic " .. basic,
    }, "grant_type=authorization_code&code=" .. code .. "&redirect_uri=" .. urlencode(redirect_uri)
       .. "&code_verifier=" .. verifier)
  end
  return wrk.format("GET", authorize_path, { ["Cookie"] = cookie })
end

response = function(status, headers, body)
  if status == 303 then
    local location = headers["Location"] or headers["location"] or ""
    local code = location:match("[?&]code=([^&]+)")
    if code then table.insert(codes, code) else failures = failures + 1 end
  elseif status == 200 and body:find('"access_token"', 1, true) then
    flows = flows + 1
  else
    failures = failures + 1
  end
end

done = function(summary, latency, requests)
  local total, failed = 0, 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("flows")
    failed = failed + thread:get("failures")
  end
  io.write(string.format("flows: %d in %.2f s = %.0f flows/s; failures: %d\n",
    total, summary.duration / 1e6, total / (summary.duration / 1e6), failed))
end
