-- session_append: append messages to a session atomically, storing each message id once.
-- Creates the session when absent, applies its TTL policy to every key, bumps its revision.
-- KEYS[1] meta hash   KEYS[2] log stream   KEYS[3] ids hash (set of stored message ids)
-- ARGV[1] policy_given: 1 = this call sets the session's TTL policy, 0 = keep the stored one
--         (a new session always takes ARGV[2..3])
-- ARGV[2] ttl in ms (0 = keep forever)   ARGV[3] sliding (0|1)
-- ARGV[4] created_at in ms for a new session (0 = now; import passes the original)
-- ARGV[5..] pairs of (message id, payload)
-- Returns {created (0|1), created ms, message count, bytes, revision, messages added}
--!include _session.lua

local meta, log, ids = KEYS[1], KEYS[2], KEYS[3]
local nargs = #ARGV
if nargs < 6 or (nargs - 4) % 2 ~= 0 then
  return redis.error_reply('RMEM_ARGS session_append takes policy, ttl, sliding, created, (id, payload)+')
end
local m = redis.call('HMGET', meta, 'created', 'count', 'bytes', 'rev', 'ttl', 'sliding', 'anchor')
local created, count, bytes, rev = 0, 0, 0, 0
local ttl, sliding, anchor
if not m[1] then
  -- Keys of an expiring session can outlive its meta by an instant: never inherit them.
  redis.call('DEL', log, ids)
  created = 1
  ttl, sliding = tonumber(ARGV[2]), tonumber(ARGV[3])
else
  count, bytes, rev, anchor = tonumber(m[2]), tonumber(m[3]), tonumber(m[4]), tonumber(m[7])
  if ARGV[1] == '1' then
    ttl, sliding = tonumber(ARGV[2]), tonumber(ARGV[3])
  else
    ttl, sliding = tonumber(m[5]), tonumber(m[6])
  end
end

local added, entry = 0, nil
for i = 5, nargs, 2 do
  if redis.call('HSETNX', ids, ARGV[i], 1) == 1 then
    entry = redis.call('XADD', log, '*', 'i', ARGV[i], 'd', ARGV[i + 1])
    added = added + 1
    bytes = bytes + #ARGV[i + 1]
  end
end

local created_ms = tonumber(m[1])
if added > 0 then
  -- The stream id's time part is the server's clock in ms: no separate TIME call needed.
  local now = tonumber(string.match(entry, '^(%d+)'))
  count, rev = count + added, rev + 1
  if created == 1 then
    created_ms, anchor = tonumber(ARGV[4]), now
    if created_ms == 0 then created_ms = now end
    redis.call('HSET', meta, 'v', 1, 'created', created_ms, 'anchor', anchor, 'count', count,
      'bytes', bytes, 'rev', rev, 'updated', now, 'ttl', ttl, 'sliding', sliding)
  elseif ARGV[1] == '1' then
    redis.call('HSET', meta, 'count', count, 'bytes', bytes, 'rev', rev, 'updated', now,
      'ttl', ttl, 'sliding', sliding)
  else
    redis.call('HSET', meta, 'count', count, 'bytes', bytes, 'rev', rev, 'updated', now)
  end
elseif created == 1 then
  return redis.error_reply('RMEM_ARGS session_append found ids of a session that does not exist')
elseif ARGV[1] == '1' then
  redis.call('HSET', meta, 'ttl', ttl, 'sliding', sliding)
end
apply_ttl(ttl, sliding, anchor)
return {created, created_ms, count, bytes, rev, added}
