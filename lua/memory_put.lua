-- memory_put: write (insert or replace) memory records of one namespace. A put made now wins
-- over what the record or its tombstone holds (its stamp moves after theirs); a replayed put
-- (an 'r' before ARGV[3]) wins only with a later stamp: last writer wins (_stamp.lua).
-- ARGV: first the namespace's sync channel (taken off by _memory.lua), then ARGV[1..] below
-- KEYS[1] ids  KEYS[2] meta  KEYS[3] tombs  KEYS[4] texts  KEYS[5] change log (see _memory.lua)
-- KEYS[6..] one record hash per item, in order
-- ARGV[1] dedupe (0|1): return the live record holding the same normalised text instead
-- ARGV[2] change log MAXLEN (approximate)   ARGV[3] most ms a stamp may be ahead of TIME, with
--   an 'r' before it for a replayed call (_stamp.lua: stamp_bound)
-- ARGV[4..] per item: id, stamp, text digest, ttl ms (0 = none), n, then n field/value pairs
-- Errors: RMEM_VALIDATION for a malformed or future stamp, RMEM_CORRUPT for a damaged record
--   hash, tombstone or revision (see _memory.lua); either way nothing is written.
-- Returns, per item, {status, id, created ms, updated ms, stamp}, flattened, where status is
--   0 written (stamp: the one stored, which a put made now may have moved), 1 deduplicated
--   (id names the existing record), and, for a replayed put only, 2 a newer write already
--   holds the id, 3 the id was deleted by a newer write (nothing written; stamp '' but for 0)
--!include _memory.lua

local dedupe, maxlen = ARGV[1] == '1', ARGV[2]
local replayed, bound = stamp_bound(ARGV[3])
local now = now_ms()
local out, changed, a = {}, false, 4
-- Every stamp, and every record this batch would replace, is checked before anything is
-- written: a refused batch changes nothing.
local refused = bad_revision(META)
if refused then return refused end
for k = 6, #KEYS do
  refused = check_stamp(ARGV[a + 1], now, bound)
  if refused then return redis.error_reply(refused) end
  refused = damaged_record(KEYS[k]) or damaged_tomb(ARGV[a])
  if refused then return refused end
  a = a + 5 + 2 * tonumber(ARGV[a + 4])
end
a = 4
for k = 6, #KEYS do
  local key = KEYS[k]
  local id, stamp, dig, ttl, n = ARGV[a], ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3]),
    tonumber(ARGV[a + 4])
  local first = a + 5
  a = first + 2 * n
  local status, created, updated = 0, now, now
  local other = dedupe and redis.call('HGET', TEXTS, dig)
  local other_expiry = other and redis.call('ZSCORE', IDS, other)
  if other_expiry and (other_expiry == 'inf' or tonumber(other_expiry) > now) then
    status, id = 1, other
  else
    local cur = redis.call('HMGET', key, 'stamp', 'created', 'updated')
    local tomb = redis.call('HGET', TOMBS, id)
    if not replayed then stamp = later_than(later_than(stamp, cur[1]), tomb) end
    if cur[1] and cur[1] >= stamp then
      status, created, updated = 2, tonumber(cur[2]), tonumber(cur[3])
    elseif tomb and tomb >= stamp then
      status = 3
    else
      if cur[1] then
        created = tonumber(cur[2])
        drop_digest(key, id)
        redis.call('DEL', key)
      end
      local expiry = 0
      if ttl > 0 then expiry = now + ttl end
      local fields = {'id', id, 'created', created, 'updated', now, 'stamp', stamp,
        'exp', expiry, 'dig', dig}
      for i = first, a - 1 do fields[#fields + 1] = ARGV[i] end
      redis.call('HSET', key, unpack(fields))
      if ttl > 0 then
        redis.call('PEXPIRE', key, ttl)
        redis.call('ZADD', IDS, expiry, id)
      else
        redis.call('ZADD', IDS, 'inf', id)
      end
      redis.call('HSET', TEXTS, dig, id)
      if tomb then redis.call('HDEL', TOMBS, id) end
      log_change(maxlen, 'put', id, stamp)
      changed = true
    end
  end
  out[#out + 1] = status
  out[#out + 1] = id
  out[#out + 1] = created
  out[#out + 1] = updated
  out[#out + 1] = status == 0 and stamp or ''
end
if changed then redis.call('HINCRBY', META, 'rev', 1) end
return out
