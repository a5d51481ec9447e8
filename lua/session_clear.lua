-- session_clear: remove every message of a session; the session itself (meta, TTL) stays.
-- KEYS[1] meta hash   KEYS[2] log stream   KEYS[3] ids hash
-- Returns how many messages were removed, or -1 when the session does not exist.
--!include _session.lua

local meta, log, ids = KEYS[1], KEYS[2], KEYS[3]
if redis.call('EXISTS', meta) == 0 then return -1 end
local removed = tonumber(redis.call('HGET', meta, 'count')) or 0
redis.call('DEL', log, ids)
redis.call('HSET', meta, 'count', 0, 'bytes', 0, 'updated', now_ms())
redis.call('HINCRBY', meta, 'rev', 1)
apply_stored_ttl(meta)
return removed
