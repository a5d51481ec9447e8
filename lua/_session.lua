-- _session: helpers included by the session_* write scripts (not a script on its own).
-- KEYS[1] meta hash   KEYS[2] msgs sorted set   KEYS[3] change log stream
-- Every session write script takes the same first ARGV:
--   ARGV[1] sync channel (pub/sub hint)   ARGV[2] session id   ARGV[3] change log MAXLEN
--   ARGV[4] stamp of this operation   ARGV[5] most ms a stamp may be ahead of TIME, with an
--   'r' before it for a write replayed from a client's fallback outbox (see REPLAYED)
-- The meta hash holds: v (format), created, updated, anchor (ms the absolute TTL counts from),
-- count, bytes, rev (revision), ttl (ms, 0 = keep forever), sliding (0|1), pst (stamp of the TTL
-- policy), clr (stamp of the last clear), del (stamp of the delete, only on a tombstone: a
-- deleted session's meta keeps just v, rev and del), ht (see HT below), top (the stamp of the
-- newest message stored, or later: pops leave it), and '#<message id>' -> message stamp.
-- msgs members are <stamp (36 chars)><index (6 hex)><message id>\0<payload>, all with score 0,
-- so the set is ordered by (stamp, index, id): every message of one batch shares the batch's
-- stamp, so a batch stays contiguous. Stamps are fixed-width hybrid logical clock strings.
-- Scripts check the integer meta fields they read with check_integers (_meta.lua) before they
-- write anything.
--!include _stamp.lua
--!include _meta.lua

local META, MSGS, CHANGES = KEYS[1], KEYS[2], KEYS[3]
local CHANNEL, SID, MAXLEN, STAMP = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
-- A write made now follows Redis's order: one that finds a message, clear, delete or TTL
-- policy stamped at or after its own stamp (another host's clock runs ahead, or both fell in
-- the same millisecond) takes a stamp after it (follow) instead of losing to it or sorting
-- before it. A replayed write was made earlier, while its client could not reach Redis: it
-- keeps its stamp, so a write made before a clear it never saw stays cleared (last writer
-- wins, docs/decisions.md 19 and 41).
local REPLAYED, BOUND = stamp_bound(ARGV[5])
-- The value of the meta field 'ht', written with the fixed fields: longer than Redis's
-- hash-max-listpack-value (64), so the meta hash is a hash table from its first write. As a
-- listpack (up to 512 fields, so any session under ~500 messages) every field that is looked
-- up and absent, as each new message id is, costs a scan of the whole hash.
local HT = 'over 64 bytes, so this hash is a hash table (see rmem docs/decisions.md, 26)'

-- Move STAMP (a write made now) after `stamp` unless it is already after it; nil, '' and a
-- value that is not a stamp (damage written by something else) leave it as it is.
local function follow(stamp)
  STAMP = later_than(STAMP, stamp)
end

-- The stamp of the session's newest message, or nil when it holds none (or its msgs key is
-- of another type: written by something else, it holds nothing of rmem's).
local function newest_stamp()
  if redis.call('TYPE', MSGS)['ok'] ~= 'zset' then return nil end
  local newest = redis.call('ZRANGE', MSGS, -1, -1)
  if #newest == 0 then return nil end
  return string.sub(newest[1], 1, 36)
end

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
