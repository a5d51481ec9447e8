-- session_touch: restart a session's TTL when its policy is sliding (reads count as use).
-- KEYS[1] meta hash   KEYS[2] log stream   KEYS[3] ids hash
-- Returns 1 when the session exists, 0 when it does not (nothing changes then).

local p = redis.call('HMGET', KEYS[1], 'ttl', 'sliding')
if not p[2] then return 0 end
local ttl = tonumber(p[1])
if ttl > 0 and p[2] == '1' then
  for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ttl) end
end
return 1
