-- session_delete: remove a session and its messages, leaving a tombstone (the meta hash keeps
-- only v, rev and del = this stamp) so that a delayed append stamped before the delete cannot
-- bring it back. The tombstone and the change log expire after ARGV[6] ms.
-- KEYS[1] meta hash   KEYS[2] msgs sorted set   KEYS[3] change log stream
-- ARGV[1..5] channel, session id, change log MAXLEN, stamp, stamp bound (see _session.lua)
-- ARGV[6] ms to keep the tombstone
-- A delete made now removes every message Redis holds (its stamp moves after the newest one's
-- when needed, see settle_stamp). Messages stamped after a replayed delete (one made during an
-- outage, while others wrote) outlive it: the session stays with just those, as if a later
-- append had re-created it.
-- Damage (see _meta.lua): delete heals whatever something else wrote into the meta hash's
-- integer fields; it is how a user gets rid of a session rmem refuses to read. Damaged
-- counters (count, bytes, updated, rev) are rewritten when newer messages keep the session;
-- damage in a field the session would keep (created, anchor, ttl, sliding) deletes it whole,
-- newer messages included. A damaged tombstone, or a meta hash without 'created' holding
-- damage, is replaced by a sound tombstone (the reply is still 0).
-- Returns the deleted session's creation time in ms (the client uses it to drop the session
-- from the namespace listing without racing a re-creation), 0 when it did not exist, -1 when
-- newer messages kept it, or -2 when it was deleted but its creation time was damaged
-- (sessions() drops it from the listing when it next finds it gone).
--!include _session.lua
--!include _session_drop.lua

local now = now_ms()
local refused = check_stamp(STAMP, now, BOUND)
if refused then return redis.error_reply(refused) end
local names = {'created', 'rev', 'count', 'bytes', 'ttl', 'sliding', 'anchor', 'updated', 'clr',
  'del'}
local m = redis.call('HMGET', META, unpack(names))
local _, bad = check_integers(META, names, m, 8, {created = true, rev = true, count = true,
  bytes = true, ttl = true, sliding = true, anchor = true, updated = true})
local exists = m[1] ~= false or (bad and bad.created)
if not exists and not bad then return 0 end
bad = bad or {}
local rev = next_rev(tonumber(m[2]), bad.rev, now)
local keeps = not (bad.created or bad.ttl or bad.sliding or bad.anchor)
local newest = exists and settle_stamp()
if keeps and newest and newest > STAMP then
  local n, b = drop_through(STAMP)
  local count, bytes = tonumber(m[3]), tonumber(m[4])
  if count and bytes then
    count, bytes = count - n, bytes - b
  else
    count, bytes = recount()
  end
  local clr = m[9] or ''
  if STAMP > clr then clr = STAMP end
  redis.call('HSET', META, 'count', count, 'bytes', bytes, 'updated', now, 'rev', rev, 'clr', clr)
  record('d', rev, '')
  local ttl = tonumber(m[5]) or 0
  apply_ttl(ttl, m[6] == '1', tonumber(m[7]) or now, ttl)
  return -1
end
local del = m[10] or ''
if STAMP > del then del = STAMP end
redis.call('DEL', META, MSGS)
redis.call('HSET', META, 'v', 2, 'rev', rev, 'del', del)
record('d', rev, '')
redis.call('PEXPIRE', META, ARGV[6])
redis.call('PEXPIRE', CHANGES, ARGV[6])
if not exists then return 0 end
return tonumber(m[1]) or -2
