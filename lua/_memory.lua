-- _memory: helpers of the memory_* scripts (not a script on its own).
-- Namespace keys, always KEYS[1..5]: ids (zset id -> expiry ms, 'inf' for none), meta (hash: rev),
-- tombs (hash id -> stamp of the delete), texts (hash text digest -> id), log (change stream).
-- Record hash fields: id, ns, text, tags, created, updated, stamp, exp, dig, and optionally
-- vec, meta, and w_<name> for declared metadata fields.
-- Stamps are fixed-width hybrid logical clock strings: comparing them as strings orders them.
-- Damage written by something else (docs/decisions.md, 23): put and update refuse a record
-- hash whose stamp, created or updated is not rmem's, a tombstone that is not a stamp, and a
-- meta 'rev' that is not an integer (RMEM_CORRUPT, nothing written); delete removes a damaged
-- record hash whatever it holds, which is how a user heals it.
-- ARGV[1] of every memory_* script that includes this file is the namespace's sync channel; it
-- is taken off here, so each script's own arguments start at ARGV[1].
--!include _stamp.lua
--!include _damage.lua

local IDS, META, TOMBS, TEXTS, LOG = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local CHANNEL = table.remove(ARGV, 1)
-- The error for a record hash whose stamp or times were not written by rmem, else nil (also
-- when there is no hash). A write must not guess whether such a record is older than itself.
local function damaged_record(key)
  local f = redis.call('HMGET', key, 'stamp', 'created', 'updated')
  if not f[1] then
    if redis.call('EXISTS', key) == 1 then return corrupt(key, 'field stamp is missing') end
    return nil
  end
  if not is_stamp(f[1]) then return corrupt(key, 'field stamp is not an rmem clock stamp') end
  if not (f[2] and string.find(f[2], '^%d+$')) then
    return corrupt(key, 'field created is not a time in ms')
  end
  if not (f[3] and string.find(f[3], '^%d+$')) then
    return corrupt(key, 'field updated is not a time in ms')
  end
  return nil
end

-- The error for a tombstone of record id that is not a clock stamp, else nil.
local function damaged_tomb(id)
  local tomb = redis.call('HGET', TOMBS, id)
  if tomb and not is_stamp(tomb) then
    return corrupt(TOMBS, 'field ' .. id .. ' is not an rmem clock stamp')
  end
  return nil
end

-- Forget the text digest of a record, unless the digest already names a newer record.
local function drop_digest(key, id)
  local dig = redis.call('HGET', key, 'dig')
  if dig and redis.call('HGET', TEXTS, dig) == id then
    redis.call('HDEL', TEXTS, dig)
  end
end

-- Record a change in the change log and publish the sync hint
-- "<kind>\n<stamp>\n0\n<change id>\n<record id>".
local function log_change(maxlen, kind, id, stamp)
  local change = redis.call('XADD', LOG, 'MAXLEN', '~', maxlen, '*', 'k', kind, 'i', id, 's', stamp)
  redis.call('PUBLISH', CHANNEL, kind .. '\n' .. stamp .. '\n0\n' .. change .. '\n' .. id)
end
