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
-- Errors: RMEM_CORRUPT for damaged meta fields (see _meta.lua), before any TTL is touched.
--!include _meta.lua

local meta = KEYS[1]
local m, refused = read_meta(meta)
if refused then return refused end
if not m.exists then return {} end
local ttl = m.ttl
if ttl and ttl > 0 and m.sliding == 1 then
  for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ttl) end
end
local out = {m.count, m.bytes, m.created, m.updated or m.created, ttl, m.sliding, m.rev,
  redis.call('PTTL', meta)}
if ARGV[1] == '1' then
  local members = redis.call('ZRANGE', KEYS[2], 0, -1)
  for i = 1, #members do out[#out + 1] = members[i] end
end
return out
