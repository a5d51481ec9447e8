-- session_touch: restart a session's TTL when its policy is sliding (reads count as use).
-- Not a change: nothing is logged or published.
-- KEYS[1] meta hash   KEYS[2] msgs sorted set   KEYS[3] change log stream
-- Returns the ms left before the session expires (-1 = never), or -2 when it does not exist.

local p = redis.call('HMGET', KEYS[1], 'ttl', 'sliding', 'created')
if not p[3] then return -2 end
local ttl = tonumber(p[1])
if ttl > 0 and p[2] == '1' then
  for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ttl) end
  return ttl
end
return redis.call('PTTL', KEYS[1])
