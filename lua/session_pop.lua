-- session_pop: remove and return the newest message of a session (the greatest (stamp, id)).
-- KEYS[1] meta hash   KEYS[2] msgs sorted set   KEYS[3] change log stream
-- ARGV[1..5] channel, session id, change log MAXLEN, stamp, stamp bound (see _session.lua)
-- ARGV[6] (optional) the id of the message to remove instead of the newest: how a pop made
--   while Redis was unreachable is replayed (idempotent: a message already gone is a no-op)
-- Returns the payload, or nil when the session is missing or empty (or lacks ARGV[6]).
-- Errors: RMEM_CORRUPT when created, count, bytes, rev, ttl, sliding or anchor is damaged (see
--   _meta.lua), before anything is written.
--!include _session.lua

local now = now_ms()
local refused = check_stamp(STAMP, now, BOUND)
if refused then return redis.error_reply(refused) end
local names = {'created', 'count', 'bytes', 'rev', 'ttl', 'sliding', 'anchor'}
local m = redis.call('HMGET', META, unpack(names))
refused = check_integers(META, names, m, 7)
if refused then return refused end
if not m[1] then return nil end
local ttl = tonumber(m[5]) or 0
apply_ttl(ttl, m[6] == '1', tonumber(m[7]) or now, ttl)
local member
if ARGV[6] then
  local stamp = redis.call('HGET', META, '#' .. ARGV[6])
  if not stamp then return nil end
  for _, m in ipairs(redis.call('ZRANGEBYLEX', MSGS, '[' .. stamp, '(' .. stamp .. '\255')) do
    local nul = string.find(m, '\0', 43, true)
    if string.sub(m, 43, nul - 1) == ARGV[6] then member = m end
  end
  if not member then return nil end
  redis.call('ZREM', MSGS, member)
else
  local last = redis.call('ZPOPMAX', MSGS)
  if #last == 0 then return nil end
  member = last[1]
end
local nul = string.find(member, '\0', 43, true)
local id = string.sub(member, 43, nul - 1)
local payload = string.sub(member, nul + 1)
local rev = (tonumber(m[4]) or 0) + 1
redis.call('HDEL', META, '#' .. id)
redis.call('HSET', META, 'count', (tonumber(m[2]) or 0) - 1,
  'bytes', (tonumber(m[3]) or 0) - #payload, 'updated', now, 'rev', rev)
record('r', rev, string.sub(member, 1, nul - 1))
return payload
