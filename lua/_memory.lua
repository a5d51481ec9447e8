-- _memory: helpers of the memory_* scripts (not a script on its own).
-- Namespace keys, always KEYS[1..5]: ids (zset id -> expiry ms, 'inf' for none), meta (hash: rev),
-- tombs (hash id -> stamp of the delete), texts (hash text digest -> id), log (change stream).
-- Record hash fields: id, ns, text, tags, created, updated, stamp, exp, dig, and optionally
-- vec, meta, and w_<name> for declared metadata fields.
-- Stamps are fixed-width hybrid logical clock strings: comparing them as strings orders them.
-- ARGV[1] of every memory_* script that includes this file is the namespace's sync channel; it
-- is taken off here, so each script's own arguments start at ARGV[1].
--!include _stamp.lua

local IDS, META, TOMBS, TEXTS, LOG = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local CHANNEL = table.remove(ARGV, 1)

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
