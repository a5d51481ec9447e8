-- _session: helpers included by the session_* write scripts (not a script on its own).
-- KEYS[1] meta hash   KEYS[2] msgs sorted set   KEYS[3] change log stream
-- Every session write script takes the same first ARGV:
--   ARGV[1] sync channel (pub/sub hint)   ARGV[2] session id   ARGV[3] change log MAXLEN
--   ARGV[4] stamp of this operation   ARGV[5] most ms a stamp may be ahead of TIME
-- The meta hash holds: v (format), created, updated, anchor (ms the absolute TTL counts from),
-- count, bytes, rev (revision), ttl (ms, 0 = keep forever), sliding (0|1), pst (stamp of the TTL
-- policy), clr (stamp of the last clear), del (stamp of the delete, only on a tombstone: a
-- deleted session's meta keeps just v, rev and del), ht (see HT below), and
-- '#<message id>' -> message stamp.
-- msgs members are <stamp (36 chars)><index (6 hex)><message id>\0<payload>, all with score 0,
-- so the set is ordered by (stamp, index, id): every message of one batch shares the batch's
-- stamp, so a batch stays contiguous. Stamps are fixed-width hybrid logical clock strings.
-- Scripts check the integer meta fields they read with check_integers (_meta.lua) before they
-- write anything.
--!include _stamp.lua
--!include _meta.lua

local META, MSGS, CHANGES = KEYS[1], KEYS[2], KEYS[3]
local CHANNEL, SID, MAXLEN, STAMP, BOUND = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
-- The value of the meta field 'ht', written with the fixed fields: longer than Redis's
-- hash-max-listpack-value (64), so the meta hash is a hash table from its first write. As a
-- listpack (up to 512 fields, so any session under ~500 messages) every field that is looked
-- up and absent, as each new message id is, costs a scan of the whole hash.
local HT = 'over 64 bytes, so this hash is a hash table (see rmem docs/decisions.md, 26)'

-- Give every key of the session the same expiry, so a history never expires in part.
-- ttl: ms (0 = keep forever); sliding: true restarts it now, false counts it from anchor (ms);
-- was: the ttl the session had before this script (-1 when unknown or new). The keys of a
-- session kept forever carry no expiry: every script that creates a session or changes its
-- policy applies it to all three keys, and delete's tombstone is a session that does not
-- exist. So only a change to 'keep forever' needs PERSIST.
local function apply_ttl(ttl, sliding, anchor, was)
  if ttl > 0 then
    if sliding then
      for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ttl) end
    else
      for i = 1, #KEYS do redis.call('PEXPIREAT', KEYS[i], anchor + ttl) end
    end
  elseif was ~= 0 then
    for i = 1, #KEYS do redis.call('PERSIST', KEYS[i]) end
  end
end

-- Run `command key v1 v2 ...` over values, at most `per` values a call (unpack() stops near
-- 8000 values; `per` even for field-value or score-member pairs).
local function call_chunked(command, key, values, per)
  for from = 1, #values, per do
    redis.call(command, key, unpack(values, from, math.min(from + per - 1, #values)))
  end
end

-- Record a change in the session's change log and publish the sync hint
-- "<kind>\n<stamp>\n<rev>\n<change id>\n<session id>". Returns the change id.
local function record(kind, rev, data)
  local id = redis.call('XADD', CHANGES, 'MAXLEN', '~', MAXLEN, '*', 'k', kind, 's', STAMP,
    'm', data)
  redis.call('PUBLISH', CHANNEL, kind .. '\n' .. STAMP .. '\n' .. rev .. '\n' .. id .. '\n' .. SID)
  return id
end
