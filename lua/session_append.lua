-- session_append: add messages to a session atomically, storing each message id once.
-- Creates the session when absent, applies its TTL policy to every key, bumps its revision,
-- records the change and publishes a sync hint.
-- KEYS[1] meta hash   KEYS[2] msgs sorted set   KEYS[3] change log stream
-- ARGV[1..5] channel, session id, change log MAXLEN, stamp, stamp bound (see _session.lua);
--         ARGV[4] is the stamp every member of the batch starts with
-- ARGV[6] policy_given: 1 = this call sets the session's TTL policy, 0 = keep the stored one
--         (a new session always takes ARGV[7..8]; a replayed call's policy loses to a
--         stored one with a newer stamp, see below)
-- ARGV[7] ttl in ms (0 = keep forever)   ARGV[8] sliding (0|1)
-- ARGV[9] created_at in ms for a new session (-1 = now; import passes the original)
-- ARGV[10..] pairs of (message id, member) where member = <stamp><index><id>\0<payload>
--   (index: 6 hex digits, the message's place in its batch; a batch shares one stamp)
-- A write made now lands after everything the session holds, in Redis's order: when its stamp
-- is not after the session's newest message ('top'), last clear or delete, or (when it sets
-- one) TTL policy, the batch takes the least stamp after all of them (its members are
-- rewritten). A replayed write keeps its stamp, so a message stamped at or before the last
-- clear or delete is dropped (a delayed write cannot bring back what a newer clear or delete
-- removed) and one stamped before newer messages sorts among them.
-- Errors: RMEM_VALIDATION for a malformed or future stamp; RMEM_CORRUPT when created, count,
--   bytes, rev, ttl, sliding or anchor in the meta hash is damaged (see _meta.lua); either way
--   nothing is written.
-- Returns {created (0|1), created ms, message count, bytes, revision, messages added, change id,
--   server time ms, ms before the keys expire for a sliding TTL (-1: not sliding, or forever),
--   the stamp the batch was stored under (ARGV[4] unless this script moved it)}
-- Cost (docs/decisions.md, 26): one HMGET reads the meta fields and each message id's dedupe
-- field, one HSET and one ZADD write them (per 1000 messages); tables are built whole by
-- constructors where they can be (a table grown one key at a time is rehashed as it grows).
--!include _session.lua

local nargs = #ARGV
if nargs < 11 or (nargs - 9) % 2 ~= 0 then
  return redis.error_reply('RMEM_ARGS session_append takes 9 arguments, then (id, member)+')
end
local now = now_ms()
local refused = check_stamp(STAMP, now, BOUND)
if refused then return redis.error_reply(refused) end

local CHUNK = 1000  -- messages per HMGET, HSET or ZADD: unpack() stops near 8000 values
local n = (nargs - 9) / 2

-- m[1..NF] are these meta fields; m[NF + k] is the stamp stored for message k's id, if any.
local NF = 11
local fields = {'created', 'count', 'bytes', 'rev', 'ttl', 'sliding', 'anchor', 'pst', 'clr',
  'exp', 'top', '#' .. ARGV[10]}
for k = 2, n do fields[NF + k] = '#' .. ARGV[8 + 2 * k] end
local m
if n <= CHUNK then
  m = redis.call('HMGET', META, unpack(fields))
else
  m = redis.call('HMGET', META, unpack(fields, 1, NF + CHUNK))
  for from = NF + 1 + CHUNK, NF + n, CHUNK do
    local part = redis.call('HMGET', META, unpack(fields, from, math.min(from + CHUNK - 1, NF + n)))
    for i = 1, #part do m[from + i - 1] = part[i] end
  end
end
refused = check_integers(META, fields, m, 7)
if refused then return refused end

local exists = m[1] ~= false
local count, bytes, rev = tonumber(m[2]) or 0, tonumber(m[3]) or 0, tonumber(m[4]) or 0
local floor, del = m[9] or '', false
if not exists then
  -- A tombstone: messages stamped before the delete stay deleted.
  del = redis.call('HGET', META, 'del')
  if del and del > floor then floor = del end
  -- Leftovers of an expiring or deleted session never carry over.
  redis.call('DEL', MSGS)
  count, bytes = 0, 0
end
if not REPLAYED then
  -- Follow the last clear or delete, the newest message ('top'; a session written before
  -- rmem kept 'top' is asked) and the policy this append may replace.
  local stamp = STAMP
  follow(floor)
  if count > 0 then follow(m[11] or newest_stamp()) end
  if ARGV[6] == '1' then follow(m[8]) end
  if STAMP ~= stamp then
    for k = 1, n do ARGV[9 + 2 * k] = STAMP .. string.sub(ARGV[9 + 2 * k], 37) end
  end
end
local old_ttl = tonumber(m[5]) or 0
local ttl, sliding = old_ttl, m[6]
local set_policy = not exists or (ARGV[6] == '1' and STAMP > (m[8] or ''))
if set_policy then ttl, sliding = tonumber(ARGV[7]), ARGV[8] end
-- Whether every key's expiry is set again (decision 30): always for a new session, a changed
-- policy, or a message set this append re-creates (count 0: the set had been removed); an
-- absolute TTL otherwise stays where it is, and a sliding one is restarted only when due
-- (ttl_restart_due). exp: the expiry a sliding TTL set here gives every key, kept in the meta
-- hash; every key of a session carries an expiry no earlier than the stored exp.
local expire_keys, exp = true, nil
if exists and count > 0 and ttl > 0 and ttl == old_ttl and sliding == m[6] then
  expire_keys = sliding == '1' and ttl_restart_due(tonumber(m[10]), now, ttl)
end
if expire_keys and ttl > 0 and sliding == '1' then exp = now + ttl end

-- The messages added: stamped after the last clear or delete, with an id neither stored nor
-- earlier in the batch. first: the first one's k; more: dedupe field and stamp, then score and
-- member, of the others (a batch only).
local added, first, more, seen = 0, nil, nil, nil
for k = 1, n do
  local id, member = ARGV[8 + 2 * k], ARGV[9 + 2 * k]
  local stamp = string.sub(member, 1, 36)
  if stamp > floor and not m[NF + k] and not (seen and seen[id]) then
    added = added + 1
    bytes = bytes + #member - 43 - #id
    if added == 1 then
      first = k
    else
      more = more or {}
      more[#more + 1] = k
    end
    if n > 1 then
      seen = seen or {}
      seen[id] = true
    end
  end
end

local created_ms, change = m[1], ''
if added > 0 then
  count, rev = count + added, rev + 1
  local id, member = ARGV[8 + 2 * first], ARGV[9 + 2 * first]
  local prefix = string.sub(member, 1, 42 + #id)
  local stamp = string.sub(prefix, 1, 36)
  local hset
  if not exists then
    created_ms = tonumber(ARGV[9])
    if created_ms < 0 then created_ms = now end
    if del then redis.call('HDEL', META, 'del') end
    hset = {fields[NF + first], stamp, 'count', count, 'bytes', bytes, 'rev', rev,
      'updated', now, 'ttl', ttl, 'sliding', sliding, 'pst', STAMP, 'v', 2,
      'created', created_ms, 'anchor', now, 'ht', HT}
  elseif set_policy then
    hset = {fields[NF + first], stamp, 'count', count, 'bytes', bytes, 'rev', rev,
      'updated', now, 'ttl', ttl, 'sliding', sliding, 'pst', STAMP}
  else
    hset = {fields[NF + first], stamp, 'count', count, 'bytes', bytes, 'rev', rev,
      'updated', now}
  end
  if exp then
    hset[#hset + 1] = 'exp'
    hset[#hset + 1] = exp
  end
  if STAMP > (m[11] or '') then
    hset[#hset + 1] = 'top'
    hset[#hset + 1] = STAMP
  end
  if not more then
    redis.call('HSET', META, unpack(hset))
    redis.call('ZADD', MSGS, 0, member)
    change = record('a', rev, prefix)
  else
    local zadd, prefixes = {0, member}, {prefix}
    for i, k in ipairs(more) do
      id, member = ARGV[8 + 2 * k], ARGV[9 + 2 * k]
      hset[#hset + 1] = fields[NF + k]
      hset[#hset + 1] = string.sub(member, 1, 36)
      zadd[2 * i + 1], zadd[2 * i + 2] = 0, member
      prefixes[i + 1] = string.sub(member, 1, 42 + #id)
    end
    call_chunked('HSET', META, hset, 2 * CHUNK)
    call_chunked('ZADD', MSGS, zadd, 2 * CHUNK)
    change = record('a', rev, table.concat(prefixes, '\n'))
  end
elseif not exists then
  -- Every message was older than the delete that removed the session: nothing comes back.
  return {0, 0, 0, 0, rev, 0, '', now, -1, STAMP}
elseif set_policy then
  rev = rev + 1
  local hset = {'ttl', ttl, 'sliding', sliding, 'pst', STAMP, 'rev', rev}
  if exp then hset[9], hset[10] = 'exp', exp end
  redis.call('HSET', META, unpack(hset))
  change = record('p', rev, '')
end
if expire_keys then
  apply_ttl(ttl, sliding == '1', exists and m[7] or now, exists and old_ttl or -1)
end
local left = -1
if ttl > 0 and sliding == '1' then left = (exp or tonumber(m[10])) - now end
return {exists and 0 or 1, created_ms, count, bytes, rev, added, change, now, left, STAMP}
