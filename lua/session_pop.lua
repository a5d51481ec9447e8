-- session_pop: remove and return the newest message of a session.
-- KEYS[1] meta hash   KEYS[2] log stream   KEYS[3] ids hash (set of stored message ids)
-- Returns the payload, or nil when the session is missing or empty.
--!include _session.lua

local meta, log, ids = KEYS[1], KEYS[2], KEYS[3]
if redis.call('EXISTS', meta) == 0 then return nil end
apply_stored_ttl(meta)
local last = redis.call('XREVRANGE', log, '+', '-', 'COUNT', 1)
if #last == 0 then return nil end
local entry, fields = last[1][1], last[1][2]
local payload = fields[4]
redis.call('XDEL', log, entry)
redis.call('HDEL', ids, fields[2])
redis.call('HINCRBY', meta, 'count', -1)
redis.call('HINCRBY', meta, 'bytes', -#payload)
redis.call('HINCRBY', meta, 'rev', 1)
redis.call('HSET', meta, 'updated', now_ms())
return payload
