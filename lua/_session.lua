-- _session: helpers included by the session_* scripts (not a script on its own).
-- KEYS[1] meta hash   KEYS[2] msgs sorted set   KEYS[3] change log stream
-- Every session script takes the same first ARGV:
--   ARGV[1] sync channel (pub/sub hint)   ARGV[2] session id   ARGV[3] change log MAXLEN
--   ARGV[4] stamp of this operation ('' for reads)   ARGV[5] most ms a stamp may be ahead of TIME
-- The meta hash holds: v (format), created, updated, anchor (ms the absolute TTL counts from),
-- count, bytes, rev (revision), ttl (ms, 0 = keep forever), sliding (0|1), pst (stamp of the TTL
-- policy), clr (stamp of the last clear), del (stamp of the delete, only on a tombstone: a
-- deleted session's meta keeps just v, rev and del), and '#<message id>' -> message stamp.
-- msgs members are <stamp (36 chars)><index (6 hex)><message id>\0<payload>, all with score 0,
-- so the set is ordered by (stamp, index, id): every message of one batch shares the batch's
-- stamp, so a batch stays contiguous. Stamps are fixed-width hybrid logical clock strings.
-- Every script reads the meta hash with read_meta (_meta.lua), which refuses integer fields
-- that something else damaged before anything is written.
--!include _stamp.lua
--!include _meta.lua

local META, MSGS, CHANGES = KEYS[1], KEYS[2], KEYS[3]
local CHANNEL, SID, MAXLEN, STAMP, BOUND = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local FIXED = {'v', 'created', 'updated', 'anchor', 'count', 'bytes', 'rev', 'ttl', 'sliding',
  'pst', 'clr', 'del'}

-- Give every key of the session the same expiry, so a history never expires in part.
local function apply_ttl(ttl, sliding, anchor)
  if ttl > 0 then
    if sliding == 1 then
      for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ttl) end
    else
      for i = 1, #KEYS do redis.call('PEXPIREAT', KEYS[i], anchor + ttl) end
    end
  else
    for i = 1, #KEYS do redis.call('PERSIST', KEYS[i]) end
  end
end

-- Apply the TTL policy of the meta hash `m` (as read_meta returns it).
local function apply_stored_ttl(m)
  apply_ttl(m.ttl or 0, m.sliding or 0, m.anchor or 0)
end

-- Record a change in the session's change log and publish the sync hint
-- "<kind>\n<stamp>\n<rev>\n<change id>\n<session id>". Returns the change id.
local function record(kind, rev, data)
  local id = redis.call('XADD', CHANGES, 'MAXLEN', '~', MAXLEN, '*', 'k', kind, 's', STAMP,
    'm', data)
  redis.call('PUBLISH', CHANNEL, kind .. '\n' .. STAMP .. '\n' .. rev .. '\n' .. id .. '\n' .. SID)
  return id
end

-- True when the session holds a message stamped after `stamp`: a clear or delete stamped
-- earlier (one replayed after an outage) must leave such messages alone (last writer wins).
local function has_newer(stamp)
  -- A msgs key of another type (written by something else) holds nothing of rmem's: clear
  -- and delete then remove it whole, which heals the session.
  if redis.call('TYPE', MSGS)['ok'] ~= 'zset' then return false end
  local newest = redis.call('ZRANGE', MSGS, -1, -1)
  return #newest > 0 and string.sub(newest[1], 1, 36) > stamp
end

-- Remove the messages stamped at or before `stamp`; returns how many went and their bytes.
local function drop_through(stamp)
  local upto = '(' .. stamp .. '\255'
  local gone = redis.call('ZRANGEBYLEX', MSGS, '-', upto)
  local bytes = 0
  for _, member in ipairs(gone) do
    local nul = string.find(member, '\0', 43, true)
    redis.call('HDEL', META, '#' .. string.sub(member, 43, nul - 1))
    bytes = bytes + #member - nul
  end
  if #gone > 0 then redis.call('ZREMRANGEBYLEX', MSGS, '-', upto) end
  return #gone, bytes
end

-- Count the messages and their bytes from the msgs set itself: what clear and delete write
-- when the counters in the meta hash were damaged.
local function recount()
  if redis.call('TYPE', MSGS)['ok'] ~= 'zset' then return 0, 0 end
  local count, bytes = 0, 0
  for _, member in ipairs(redis.call('ZRANGE', MSGS, 0, -1)) do
    local nul = string.find(member, '\0', 43, true) or #member
    count, bytes = count + 1, bytes + #member - nul
  end
  return count, bytes
end

-- Replace the meta hash by its fixed fields (dropping every '#<id>' field) with changes applied.
local function reset_meta(changes)
  local cur = redis.call('HMGET', META, unpack(FIXED))
  local fields = {}
  for i, name in ipairs(FIXED) do
    local value = changes[name]
    if value == nil then value = cur[i] end
    if value then
      fields[#fields + 1] = name
      fields[#fields + 1] = value
    end
  end
  redis.call('DEL', META)
  if #fields > 0 then redis.call('HSET', META, unpack(fields)) end
end
