-- session_expire: set a session's TTL policy and restart its clock now.
-- KEYS[1] meta hash   KEYS[2] log stream   KEYS[3] ids hash
-- ARGV[1] ttl in ms (0 = keep forever)   ARGV[2] sliding (0|1|-1 = keep the stored flag)
-- Returns 1 when the session exists, 0 when it does not (nothing changes then).
--!include _session.lua

local meta = KEYS[1]
local stored = redis.call('HGET', meta, 'sliding')
if not stored then return 0 end
local now = now_ms()
local sliding = ARGV[2]
if sliding == '-1' then sliding = stored end
redis.call('HSET', meta, 'ttl', ARGV[1], 'sliding', sliding, 'anchor', now)
apply_ttl(tonumber(ARGV[1]), tonumber(sliding), now)
return 1
