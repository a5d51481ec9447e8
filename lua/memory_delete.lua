-- memory_delete: delete memory records, leaving a tombstone so that no older write brings
-- them back. A delete made now removes what the record holds (its stamp moves after the
-- record's and the tombstone's); a replayed one (an 'r' before ARGV[2]) removes it only with a
-- later stamp: last writer wins (_stamp.lua).
-- ARGV: first the namespace's sync channel (taken off by _memory.lua), then ARGV[1..] below
-- KEYS[1] ids  KEYS[2] meta  KEYS[3] tombs  KEYS[4] texts  KEYS[5] change log (see _memory.lua)
-- KEYS[6..] one record hash per item, in order
-- ARGV[1] change log MAXLEN   ARGV[2] most ms a stamp may be ahead of TIME, with an 'r' before
--   it for a replayed call (_stamp.lua: stamp_bound)
-- ARGV[3..] per item: id, stamp
-- Returns, per item, 1 when a live record was deleted, else 0 (absent, already deleted, or,
-- for a replayed delete, written by a newer write, which wins). A damaged record hash (no
-- stamp of rmem's) is deleted whatever it holds, and counts as 1: deleting is how a user
-- heals it.
-- Errors: RMEM_CORRUPT when the namespace's revision is damaged (nothing deleted).
--!include _memory.lua

local maxlen = ARGV[1]
local replayed, bound = stamp_bound(ARGV[2])
local now = now_ms()
for i = 4, #ARGV, 2 do
  local refused = check_stamp(ARGV[i], now, bound)
  if refused then return redis.error_reply(refused) end
end
local refused = bad_revision(META)
if refused then return refused end
-- A key of another type fails here (WRONGTYPE), before anything is deleted.
for k = 6, #KEYS do redis.call('HGET', KEYS[k], 'stamp') end
local out, changed = {}, false
for k = 6, #KEYS do
  local key = KEYS[k]
  local id, stamp = ARGV[2 * (k - 6) + 3], ARGV[2 * (k - 6) + 4]
  local cur = redis.call('HGET', key, 'stamp')
  -- A hash without a stamp of rmem's is damage, older than any delete: it goes whatever the
  -- tombstone says. A tombstone that is not a stamp is overwritten.
  local damaged = (cur and not is_stamp(cur)) or (not cur and redis.call('EXISTS', key) == 1)
  if damaged then cur = nil end
  local tomb = redis.call('HGET', TOMBS, id)
  if tomb and not is_stamp(tomb) then tomb = nil end
  if not replayed then stamp = later_than(later_than(stamp, cur), tomb) end
  local wins = not (cur and cur > stamp) and not (tomb and tomb >= stamp)
  local deleted = 0
  if damaged or (wins and cur) then
    drop_digest(key, id)
    redis.call('DEL', key)
    deleted = 1
  end
  if wins then
    redis.call('ZREM', IDS, id)
    redis.call('HSET', TOMBS, id, stamp)
    log_change(maxlen, 'del', id, stamp)
    changed = true
  end
  out[#out + 1] = deleted
end
if changed then redis.call('HINCRBY', META, 'rev', 1) end
return out
