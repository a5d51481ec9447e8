-- session_read: a session's info and, optionally, all its messages, in one snapshot.
-- Restarts the TTL when the session's policy is sliding (a read counts as use).
-- (messages(last=N) reads the sorted set directly, pipelined with session_touch: a native
-- ZRANGE is several times cheaper than converting entries to Lua tables and back.)
-- KEYS[1] meta hash   KEYS[2] msgs sorted set   KEYS[3] change log stream
-- ARGV[1] 1 = include every message, 0 = info only
-- Returns {} when the session does not exist, else
--   {count, bytes, created ms, updated ms, ttl ms, sliding, revision, remaining ms (-1 = none),
--    member, member, ...} with members (<stamp><id>\0<payload>) oldest first.

local meta = KEYS[1]
local m = redis.call('HMGET', meta, 'count', 'bytes', 'created', 'updated', 'ttl', 'sliding', 'rev')
if not m[3] then return {} end
local ttl = tonumber(m[5])
if ttl > 0 and m[6] == '1' then
  for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ttl) end
end
local out = {tonumber(m[1]), tonumber(m[2]), tonumber(m[3]), tonumber(m[4]) or tonumber(m[3]),
  ttl, tonumber(m[6]), tonumber(m[7]), redis.call('PTTL', meta)}
if ARGV[1] == '1' then
  local members = redis.call('ZRANGE', KEYS[2], 0, -1)
  for i = 1, #members do out[#out + 1] = members[i] end
end
return out
