-- session_expire: set a session's TTL policy and restart its clock now.
-- KEYS[1] meta hash   KEYS[2] log stream   KEYS[3] ids hash
-- ARGV[1] ttl in ms (0 = keep forever)   ARGV[2] sliding (0|1|-1 = keep the stored flag)
-- ARGV[3] 1 = only restart the TTL under the stored policy (touch); ARGV[1..2] are ignored
-- Returns 1 when the session exists, 0 when it does not (nothing changes then).
--!include _session.lua

local meta = KEYS[1]
if redis.call('EXISTS', meta) == 0 then return 0 end
local now = now_ms()
if ARGV[3] == '1' then
  local p = redis.call('HMGET', meta, 'ttl', 'sliding')
  if (tonumber(p[1]) or 0) > 0 and tonumber(p[2]) == 1 then apply_stored_ttl(meta, true) end
  return 1
end
local sliding = ARGV[2]
if sliding == '-1' then sliding = redis.call('HGET', meta, 'sliding') or '1' end
redis.call('HSET', meta, 'ttl', ARGV[1], 'sliding', sliding, 'anchor', now)
apply_ttl(tonumber(ARGV[1]), tonumber(sliding), now)
return 1
