-- session_delete: remove a session and its messages, leaving a tombstone (the meta hash keeps
-- only v, rev and del = this stamp) so that a delayed append stamped before the delete cannot
-- bring it back. The tombstone and the change log expire after ARGV[6] ms.
-- KEYS[1] meta hash   KEYS[2] msgs sorted set   KEYS[3] change log stream
-- ARGV[1..5] channel, session id, change log MAXLEN, stamp, stamp bound (see _session.lua)
-- ARGV[6] ms to keep the tombstone
-- Messages stamped after this delete (a delete replayed after an outage, while others wrote)
-- outlive it: the session stays with just those, as if a later append had re-created it.
-- Returns the deleted session's creation time in ms (the client uses it to drop the session
-- from the namespace listing without racing a re-creation), 0 when it did not exist, or -1
-- when newer messages kept it.
--!include _session.lua

local now = now_ms()
local refused = check_stamp(STAMP, now, BOUND)
if refused then return redis.error_reply(refused) end
local m = redis.call('HMGET', META, 'created', 'rev', 'count', 'bytes', 'clr')
if not m[1] then return 0 end
local rev = (tonumber(m[2]) or 0) + 1
if has_newer(STAMP) then
  local n, b = drop_through(STAMP)
  local clr = m[5] or ''
  if STAMP > clr then clr = STAMP end
  redis.call('HSET', META, 'count', (tonumber(m[3]) or 0) - n,
    'bytes', (tonumber(m[4]) or 0) - b, 'updated', now, 'rev', rev, 'clr', clr)
  record('d', rev, '')
  apply_stored_ttl()
  return -1
end
redis.call('DEL', META, MSGS)
redis.call('HSET', META, 'v', 2, 'rev', rev, 'del', STAMP)
record('d', rev, '')
redis.call('PEXPIRE', META, ARGV[6])
redis.call('PEXPIRE', CHANGES, ARGV[6])
return tonumber(m[1])
