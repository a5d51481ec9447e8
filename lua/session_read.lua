-- session_read: a session's info and, optionally, all its messages, in one snapshot.
-- Restarts the TTL when the session's policy is sliding (a read counts as use).
-- (messages(last=N) reads the sorted set directly, pipelined with session_touch: a native
-- ZRANGE is several times cheaper than converting entries to Lua tables and back.)
-- KEYS[1] meta hash   KEYS[2] msgs sorted set   KEYS[3] change log stream
-- ARGV[1] 1 = include every message, 0 = info only
-- Returns {} when the session does not exist, else
--   {count, bytes, created ms, updated ms, ttl ms, sliding, revision, remaining ms (-1 = none),
--    member, member, ...} with members (<stamp><id>\0<payload>) oldest first; the header
--    stops at a field the meta hash lacks (nil ends a Lua table), which the client reports.
-- Errors: RMEM_CORRUPT when count, bytes, created, updated, ttl, sliding or rev is damaged (see
--   _meta.lua), before any TTL is touched.
--!include _meta.lua

local meta = KEYS[1]
local names = {'count', 'bytes', 'created', 'updated', 'ttl', 'sliding', 'rev'}
local m = redis.call('HMGET', meta, unpack(names))
local refused = check_integers(meta, names, m, 7)
if refused then return refused end
if not m[3] then return {} end
for i = 1, 7 do m[i] = tonumber(m[i]) end
local ttl = m[5]
if ttl and ttl > 0 and m[6] == 1 then
  for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ttl) end
end
local out = {m[1], m[2], m[3], m[4] or m[3], ttl, m[6], m[7], redis.call('PTTL', meta)}
if ARGV[1] == '1' then
  local members = redis.call('ZRANGE', KEYS[2], 0, -1)
  for i = 1, #members do out[#out + 1] = members[i] end
end
return out
