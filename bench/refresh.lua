-- wrk script: a chain of refresh grants on one connection. Each answer carries the next
-- refresh token (rotation), which the next request presents.
-- Needs env REFRESH_TOKEN (the first token) and BASIC (base64 client_id:secret).
local token = os.getenv("REFRESH_TOKEN")
local basic = os.getenv("BASIC")
failures = 0
local threads = {}

-- done() runs in another Lua state: it reads each thread's counter.
setup = function(thread)
  table.insert(threads, thread)
end

request = function()
  return wrk.format("POST", "/oauth/token", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = "Basic " .. basic,
  }, "grant_type=refresh_token&refresh_token=" .. token)
end

response = function(status, headers, body)
  if status == 200 then
    local next_token = body:match('"refresh_token":"(rt_[%w]+)"')
    if next_token then token = next_token end
  else
    failures = failures + 1
  end
end

done = function(summary, latency, requests)
  local failed = 0
  for _, thread in ipairs(threads) do failed = failed + thread:get("failures") end
  io.write(string.format("refresh failures: %d\n", failed))
end
