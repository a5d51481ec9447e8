-- session_read: a session's info and its last N messages, in one consistent snapshot.
-- Restarts the TTL when the session's policy is sliding (a read counts as use).
-- KEYS[1] meta hash   KEYS[2] log stream   KEYS[3] ids hash
-- ARGV[1] how many messages: -1 = none (info only), 0 = all, N > 0 = the last N
-- Returns {} when the session does not exist, else
--   {count, bytes, created ms, updated ms, ttl ms, sliding, revision, remaining ms (-1 = none),
--    payload, payload, ...} with payloads oldest first.
--!include _session.lua

local meta, log = KEYS[1], KEYS[2]
local m = redis.call('HMGET', meta, 'count', 'bytes', 'created', 'updated', 'ttl', 'sliding', 'rev')
if not m[3] then return {} end
apply_stored_ttl(meta, true)
local out = {tonumber(m[1]), tonumber(m[2]), tonumber(m[3]), tonumber(m[4]) or tonumber(m[3]),
  tonumber(m[5]), tonumber(m[6]), tonumber(m[7]), redis.call('PTTL', meta)}
local n = tonumber(ARGV[1])
if n == 0 then
  local entries = redis.call('XRANGE', log, '-', '+')
  for i = 1, #entries do out[#out + 1] = entries[i][2][4] end
elseif n > 0 then
  local entries = redis.call('XREVRANGE', log, '+', '-', 'COUNT', n)
  for i = #entries, 1, -1 do out[#out + 1] = entries[i][2][4] end
end
return out
