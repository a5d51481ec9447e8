-- session_touch: restart a session's TTL when its policy is sliding (reads count as use).
-- Not a change: nothing is logged or published.
-- KEYS[1] meta hash   KEYS[2] msgs sorted set   KEYS[3] change log stream
-- Returns the ms left before the session expires (-1 = never), or -2 when it does not exist.
-- Errors: RMEM_CORRUPT for damaged meta fields (see _meta.lua), before any TTL is touched.
--!include _meta.lua

local m, refused = read_meta(KEYS[1])
if refused then return refused end
if not m.exists then return -2 end
local ttl = m.ttl
if ttl and ttl > 0 and m.sliding == 1 then
  for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ttl) end
  return ttl
end
return redis.call('PTTL', KEYS[1])
