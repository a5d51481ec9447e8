-- session_clear: remove every message of a session; the session itself (meta, TTL) stays.
-- A clear made now removes every message Redis holds (its stamp moves after the newest one's
-- when needed, see settle_stamp). A replayed clear keeps its stamp: messages stamped after it
-- stay (a clear replayed after an outage is ordered by its stamp). Either way messages stamped
-- at or before it can never come back (a delayed append is dropped).
-- KEYS[1] meta hash   KEYS[2] msgs sorted set   KEYS[3] change log stream
-- ARGV[1..5] channel, session id, change log MAXLEN, stamp, stamp bound (see _session.lua)
-- Returns how many messages were removed, or -1 when the session does not exist.
-- Damage (see _meta.lua): clear heals the fields it rewrites, count, bytes, updated and rev
--   (counted again from the messages that stay), as it heals a msgs key of another type (it
--   deletes it). Damage in a field it keeps and reads (created, anchor, ttl, sliding) is
--   refused with RMEM_CORRUPT, nothing written: clear cannot know the session's creation time
--   or TTL policy, and the session would stay unreadable. session_delete heals every field.
--!include _session.lua
--!include _session_drop.lua

local now = now_ms()
local refused = check_stamp(STAMP, now, BOUND)
if refused then return redis.error_reply(refused) end
local names = {'count', 'bytes', 'rev', 'updated', 'created', 'anchor', 'ttl', 'sliding', 'clr'}
local m = redis.call('HMGET', META, unpack(names))
local bad
refused, bad = check_integers(META, names, m, 8,
  {count = true, bytes = true, rev = true, updated = true})
if refused then return refused end
if not m[5] then return -1 end
local rev = next_rev(tonumber(m[3]), bad and bad.rev, now)
local newest = settle_stamp()
local clr = m[9] or ''
if STAMP > clr then clr = STAMP end
local removed = tonumber(m[1])
if newest and newest > STAMP then
  local n, b = drop_through(STAMP)
  local count, bytes = removed, tonumber(m[2])
  if count and bytes then
    count, bytes = count - n, bytes - b
  else
    count, bytes = recount()
  end
  redis.call('HSET', META, 'count', count, 'bytes', bytes, 'updated', now, 'rev', rev, 'clr', clr)
  removed = n
else
  if not removed then removed = recount() end
  reset_meta({count = 0, bytes = 0, updated = now, rev = rev, clr = clr})
  redis.call('DEL', MSGS)
end
record('c', rev, '')
local ttl = tonumber(m[7]) or 0
apply_ttl(ttl, m[8] == '1', tonumber(m[6]) or now, ttl)
return removed
