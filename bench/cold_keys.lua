-- wrk script: GET /v1/users/me, every request with the next key of KEYS_FILE (one per line),
-- so that no key is in the server's one-second cache: each request reads the database.
local keys = {}
for line in io.lines(os.getenv("KEYS_FILE")) do keys[#keys + 1] = line end
local next_key = 0

setup = function(thread)
  -- Threads start at different offsets (wrk runs one Lua state per thread).
  thread:set("offset", math.random(#keys))
end

init = function()
  next_key = (offset or 0)
end

request = function()
  next_key = next_key % #keys + 1
  return wrk.format("GET", "/v1/users/me", { ["Authorization"] = "Bearer " .. keys[next_key] })
end
