-- memory_update: change some fields of one live memory record. An update made now applies to
-- what the record holds (its stamp moves after the record's); a replayed one (an 'r' before
-- ARGV[5]) applies only with a later stamp: last writer wins (_stamp.lua).
-- ARGV: first the namespace's sync channel (taken off by _memory.lua), then ARGV[1..] below
-- KEYS[1] ids  KEYS[2] meta  KEYS[3] tombs  KEYS[4] texts  KEYS[5] change log (see _memory.lua)
-- KEYS[6] the record hash
-- ARGV[1] id   ARGV[2] stamp   ARGV[3] new text digest ('' = text unchanged)
-- ARGV[4] change log MAXLEN   ARGV[5] most ms a stamp may be ahead of TIME, with an 'r' before
--   it for a replayed call (_stamp.lua: stamp_bound)
-- ARGV[6] n, then n field/value pairs to set   ARGV[7 + 2n] m, then m field names to remove
-- Errors: RMEM_CORRUPT for a damaged record hash or revision (see _memory.lua), nothing written.
-- Returns {status, created ms, updated ms, stamp}: status 0 no such record, 1 updated (stamp:
--   the one stored, which an update made now may have moved), 2 (a replayed update only) a
--   newer write already holds the record (nothing changed); stamp '' but for 1
--!include _memory.lua

local key, id, stamp, dig, maxlen = KEYS[6], ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local replayed, bound = stamp_bound(ARGV[5])
local now = now_ms()
local refused = check_stamp(stamp, now, bound)
if refused then return redis.error_reply(refused) end
refused = bad_revision(META) or damaged_record(key)
if refused then return refused end
local cur = redis.call('HMGET', key, 'stamp', 'created', 'updated')
if not cur[1] then return {0, 0, 0, ''} end
if not replayed then stamp = later_than(stamp, cur[1]) end
if cur[1] >= stamp then return {2, tonumber(cur[2]), tonumber(cur[3]), ''} end
local n = tonumber(ARGV[6])
local fields = {'updated', now, 'stamp', stamp}
for i = 7, 6 + 2 * n do fields[#fields + 1] = ARGV[i] end
if dig ~= '' then
  drop_digest(key, id)
  redis.call('HSET', TEXTS, dig, id)
  fields[#fields + 1] = 'dig'
  fields[#fields + 1] = dig
end
redis.call('HSET', key, unpack(fields))
local m_at = 7 + 2 * n
local m = tonumber(ARGV[m_at])
if m > 0 then redis.call('HDEL', key, unpack(ARGV, m_at + 1, m_at + m)) end
log_change(maxlen, 'put', id, stamp)
redis.call('HINCRBY', META, 'rev', 1)
return {1, tonumber(cur[2]), now, stamp}
