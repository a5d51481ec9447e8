-- session_clear: remove every message of a session; the session itself (meta, TTL) stays.
-- Messages stamped before this clear can never come back (a delayed append is dropped), and
-- messages stamped after it stay (a clear replayed after an outage is ordered by its stamp).
-- KEYS[1] meta hash   KEYS[2] msgs sorted set   KEYS[3] change log stream
-- ARGV[1..5] channel, session id, change log MAXLEN, stamp, stamp bound (see _session.lua)
-- Returns how many messages were removed, or -1 when the session does not exist.
--!include _session.lua

local now = now_ms()
local refused = check_stamp(STAMP, now, BOUND)
if refused then return redis.error_reply(refused) end
local m = redis.call('HMGET', META, 'created', 'count', 'rev', 'clr', 'bytes')
if not m[1] then return -1 end
local rev = (tonumber(m[3]) or 0) + 1
local clr = m[4] or ''
if STAMP > clr then clr = STAMP end
local removed = tonumber(m[2]) or 0
if has_newer(STAMP) then
  local n, b = drop_through(STAMP)
  redis.call('HSET', META, 'count', removed - n, 'bytes', (tonumber(m[5]) or 0) - b,
    'updated', now, 'rev', rev, 'clr', clr)
  removed = n
else
  reset_meta({count = 0, bytes = 0, updated = now, rev = rev, clr = clr})
  redis.call('DEL', MSGS)
end
record('c', rev, '')
apply_stored_ttl()
return removed
