-- wrk script: requests at a pace instead of as fast as possible — each connection waits
-- DELAY_MS between requests (so -c10 with DELAY_MS=10 is at most ~1,000 requests/s).
-- Optional METHOD, BODY and CONTENT_TYPE; AUTHORIZATION is sent as the Authorization header.
-- Prints "statuses:" with the count of each status (and the requests/s from wrk itself).
local delay_ms = tonumber(os.getenv("DELAY_MS") or "10")
wrk.method = os.getenv("METHOD") or "GET"
if os.getenv("BODY") then wrk.body = os.getenv("BODY") end
if os.getenv("CONTENT_TYPE") then wrk.headers["Content-Type"] = os.getenv("CONTENT_TYPE") end
if os.getenv("AUTHORIZATION") then wrk.headers["Authorization"] = os.getenv("AUTHORIZATION") end
local threads = {}
counts = {}

setup = function(thread)
  table.insert(threads, thread)
end

delay = function()
  return delay_ms
end

response = function(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

done = function(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local c = t:get("counts")
    for status, n in pairs(c) do
      total[status] = (total[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(total) do
    table.insert(parts, status .. "=" .. n)
  end
  table.sort(parts)
  io.write("statuses: " .. table.concat(parts, " ") .. "\n")
  io.write(string.format("p99_us: %d\n", latency:percentile(99)))
end
