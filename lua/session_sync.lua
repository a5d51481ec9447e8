-- session_sync: what a local replica needs to catch up with a session, in one snapshot.
-- Not a use of the session: the TTL is left alone.
-- KEYS[1] meta hash   KEYS[2] msgs sorted set   KEYS[3] change log stream
-- ARGV[1] the newest change id the replica has applied ('' = none: send everything)
-- ARGV[2] most changes to send before sending everything instead
-- Returns {0, revision, newest change id} when the session does not exist (or is deleted);
-- else {1, count, bytes, created ms, updated ms, ttl ms, sliding, revision, remaining ms,
--   newest change id, mode, ...} where mode 'full' is followed by every member oldest first,
--   and mode 'delta' by, per change after ARGV[1] in order: kind, n, then n items (members
--   added for 'a', '<stamp><id>' prefixes removed for 'r', the stamp for 'c' and 'd' (they
--   removed the messages stamped up to it), none for 'p').
--   The log is 'full' whenever ARGV[1] is no longer in it (trimmed, or the keys expired).
-- Errors: RMEM_CORRUPT when count, bytes, created, updated, ttl, sliding or rev is damaged (see
--   _meta.lua).
--!include _meta.lua

local meta, msgs, changes = KEYS[1], KEYS[2], KEYS[3]
local names = {'count', 'bytes', 'created', 'updated', 'ttl', 'sliding', 'rev'}
local m = redis.call('HMGET', meta, unpack(names))
local refused = check_integers(meta, names, m, 7)
if refused then return refused end
for i = 1, 7 do m[i] = tonumber(m[i]) end
local newest = redis.call('XREVRANGE', changes, '+', '-', 'COUNT', 1)
local newest_id = newest[1] and newest[1][1] or ''
if not m[3] then return {0, m[7] or 0, newest_id} end
local out = {1, m[1], m[2], m[3], m[4] or m[3], m[5], m[6], m[7], redis.call('PTTL', meta),
  newest_id}
local since, limit = ARGV[1], tonumber(ARGV[2])
local entries = nil
if since ~= '' and #redis.call('XRANGE', changes, since, since) == 1 then
  entries = redis.call('XRANGE', changes, '(' .. since, '+', 'COUNT', limit + 1)
  if #entries > limit then entries = nil end
end
if not entries then
  out[#out + 1] = 'full'
  local members = redis.call('ZRANGE', msgs, 0, -1)
  for i = 1, #members do out[#out + 1] = members[i] end
  return out
end
out[#out + 1] = 'delta'
for _, entry in ipairs(entries) do
  local f = entry[2]  -- k, kind, s, stamp, m, data
  local kind, stamp, data = f[2], f[4], f[6]
  out[#out + 1] = kind
  if kind == 'a' then
    local found = {}
    for prefix in string.gmatch(data, '[^\n]+') do
      local hit = redis.call('ZRANGEBYLEX', msgs, '[' .. prefix .. '\0', '(' .. prefix .. '\1',
        'LIMIT', 0, 1)
      if hit[1] then found[#found + 1] = hit[1] end
    end
    out[#out + 1] = #found
    for i = 1, #found do out[#out + 1] = found[i] end
  elseif kind == 'r' then
    out[#out + 1] = 1
    out[#out + 1] = data
  elseif kind == 'c' or kind == 'd' then
    out[#out + 1] = 1
    out[#out + 1] = stamp
  else
    out[#out + 1] = 0
  end
end
return out
