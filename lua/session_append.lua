-- session_append: append messages to a session atomically, storing each message id once.
-- Creates the session when absent, applies its TTL policy to every key, bumps its revision.
-- KEYS[1] meta hash   KEYS[2] log stream   KEYS[3] ids hash (message id -> stream entry id)
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
local now = now_ms()
local created = 0
if redis.call('EXISTS', meta) == 0 then
  -- Keys of an expiring session can outlive its meta by an instant: never inherit them.
  redis.call('DEL', log, ids)
  created = 1
  local created_ms = tonumber(ARGV[4])
  if created_ms == 0 then created_ms = now end
  redis.call('HSET', meta, 'v', 1, 'created', created_ms, 'anchor', now, 'count', 0,
    'bytes', 0, 'rev', 0, 'ttl', ARGV[2], 'sliding', ARGV[3])
elseif ARGV[1] == '1' then
  redis.call('HSET', meta, 'ttl', ARGV[2], 'sliding', ARGV[3])
end

local added, nbytes = 0, 0
for i = 5, nargs, 2 do
  local mid, payload = ARGV[i], ARGV[i + 1]
  if redis.call('HEXISTS', ids, mid) == 0 then
    local entry = redis.call('XADD', log, '*', 'i', mid, 'd', payload)
    redis.call('HSET', ids, mid, entry)
    added = added + 1
    nbytes = nbytes + #payload
  end
end

local count, bytes, rev
if added > 0 then
  count = redis.call('HINCRBY', meta, 'count', added)
  bytes = redis.call('HINCRBY', meta, 'bytes', nbytes)
  rev = redis.call('HINCRBY', meta, 'rev', 1)
  redis.call('HSET', meta, 'updated', now)
else
  local m = redis.call('HMGET', meta, 'count', 'bytes', 'rev')
  count, bytes, rev = tonumber(m[1]), tonumber(m[2]), tonumber(m[3])
  if created == 1 then redis.call('HSET', meta, 'updated', now) end
end
apply_stored_ttl(meta, false)
return {created, tonumber(redis.call('HGET', meta, 'created')), count, bytes, rev, added}
