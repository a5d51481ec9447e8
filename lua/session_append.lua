-- session_append: add messages to a session atomically, storing each message id once.
-- Creates the session when absent, applies its TTL policy to every key, bumps its revision,
-- records the change and publishes a sync hint.
-- KEYS[1] meta hash   KEYS[2] msgs sorted set   KEYS[3] change log stream
-- ARGV[1..5] channel, session id, change log MAXLEN, stamp, stamp bound (see _session.lua) (ARGV[4] is the newest stamp of the batch)
-- ARGV[6] policy_given: 1 = this call sets the session's TTL policy, 0 = keep the stored one
--         (a new session always takes ARGV[7..8]; a stored policy with a newer stamp wins)
-- ARGV[7] ttl in ms (0 = keep forever)   ARGV[8] sliding (0|1)
-- ARGV[9] created_at in ms for a new session (-1 = now; import passes the original)
-- ARGV[10..] pairs of (message id, member) where member = <stamp><index><id>\0<payload>
--   (index: 6 hex digits, the message's place in its batch; a batch shares one stamp)
-- A message whose stamp is not after the session's last clear or delete is dropped (a delayed
-- write cannot bring back what a newer clear or delete removed).
-- Errors: RMEM_VALIDATION for a malformed or future stamp; RMEM_CORRUPT for a meta hash whose
--   integer fields something else damaged (see _meta.lua); either way nothing is written.
-- Returns {created (0|1), created ms, message count, bytes, revision, messages added, change id,
--   server time ms}
--!include _session.lua

local nargs = #ARGV
if nargs < 11 or (nargs - 9) % 2 ~= 0 then
  return redis.error_reply('RMEM_ARGS session_append takes 9 arguments, then (id, member)+')
end
local now = now_ms()
local refused = check_stamp(STAMP, now, BOUND)
if refused then return redis.error_reply(refused) end
local m
m, refused = read_meta(META)
if refused then return refused end
local exists = m.exists
local floor = m.clr or ''
if m.del and m.del > floor then floor = m.del end
local count, bytes, rev = m.count or 0, m.bytes or 0, m.rev or 0
local ttl, sliding, anchor = m.ttl, m.sliding, m.anchor
local set_policy = not exists or (ARGV[6] == '1' and STAMP > (m.pst or ''))
if set_policy then ttl, sliding = tonumber(ARGV[7]), tonumber(ARGV[8]) end
if not exists then
  -- Leftovers of an expiring or deleted session never carry over.
  redis.call('DEL', MSGS)
  count, bytes = 0, 0
end

local added, prefixes = 0, {}
for i = 10, nargs, 2 do
  local id, member = ARGV[i], ARGV[i + 1]
  local stamp = string.sub(member, 1, 36)
  if stamp > floor and redis.call('HSETNX', META, '#' .. id, stamp) == 1 then
    redis.call('ZADD', MSGS, 0, member)
    added = added + 1
    bytes = bytes + #member - 43 - #id
    prefixes[added] = string.sub(member, 1, 42 + #id)
  end
end

local created_ms, change = m.created, ''
if added > 0 then
  count, rev = count + added, rev + 1
  if not exists then
    created_ms, anchor = tonumber(ARGV[9]), now
    if created_ms < 0 then created_ms = now end
    redis.call('HDEL', META, 'del')
    redis.call('HSET', META, 'v', 2, 'created', created_ms, 'anchor', anchor, 'count', count,
      'bytes', bytes, 'rev', rev, 'updated', now, 'ttl', ttl, 'sliding', sliding, 'pst', STAMP)
  elseif set_policy then
    redis.call('HSET', META, 'count', count, 'bytes', bytes, 'rev', rev, 'updated', now,
      'ttl', ttl, 'sliding', sliding, 'pst', STAMP)
  else
    redis.call('HSET', META, 'count', count, 'bytes', bytes, 'rev', rev, 'updated', now)
  end
  change = record('a', rev, table.concat(prefixes, '\n'))
elseif not exists then
  -- Every message was older than the delete that removed the session: nothing comes back.
  return {0, 0, 0, 0, rev, 0, '', now}
elseif set_policy then
  rev = rev + 1
  redis.call('HSET', META, 'ttl', ttl, 'sliding', sliding, 'pst', STAMP, 'rev', rev)
  change = record('p', rev, '')
end
apply_ttl(ttl, sliding, anchor)
return {exists and 0 or 1, created_ms, count, bytes, rev, added, change, now}
