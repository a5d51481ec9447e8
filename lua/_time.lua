-- _time: the server's clock (included by other scripts; not a script on its own).
-- Every instance reads times from the one Redis, so records and sessions agree on them.

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
