-- session_delete: remove a session and its messages, leaving a tombstone (the meta hash keeps
-- only v, rev and del = this stamp) so that a delayed append stamped before the delete cannot
-- bring it back. The tombstone and the change log expire after ARGV[6] ms.
-- KEYS[1] meta hash   KEYS[2] msgs sorted set   KEYS[3] change log stream
-- ARGV[1..5] channel, session id, change log MAXLEN, stamp, stamp bound (see _session.lua)
-- ARGV[6] ms to keep the tombstone
-- Returns the deleted session's creation time in ms (the client uses it to drop the session
-- from the namespace listing without racing a re-creation), or 0 when it did not exist.
--!include _session.lua

local now = now_ms()
local refused = check_stamp(STAMP, now, BOUND)
if refused then return redis.error_reply(refused) end
local m = redis.call('HMGET', META, 'created', 'rev')
if not m[1] then return 0 end
local rev = (tonumber(m[2]) or 0) + 1
redis.call('DEL', META, MSGS)
redis.call('HSET', META, 'v', 2, 'rev', rev, 'del', STAMP)
record('d', rev, '')
redis.call('PEXPIRE', META, ARGV[6])
redis.call('PEXPIRE', CHANGES, ARGV[6])
return tonumber(m[1])
