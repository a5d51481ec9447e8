-- _time: the server's clock (included by other scripts; not a script on its own).
-- Every instance reads times from the one Redis, so records and sessions agree on them.

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Whether a sliding TTL of ttl ms must be set again at now (ms), given was, the expiry it
-- was last set to (the 'exp' field of a session's meta hash; nil when unknown): no when it
-- was set less than min(1 s, ttl / 10) ago under the same ttl, so a burst of writes or reads
-- restarts it once (docs/decisions.md, 30).
local function ttl_restart_due(was, now, ttl)
  local due = now + ttl
  return not (was and was <= due and was >= due - math.min(1000, math.floor(ttl / 10)))
end
