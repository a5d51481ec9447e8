-- memory_count: count the live memory records of a namespace, first dropping the ids of
-- records whose TTL has passed (their hashes are gone already) and logging those expiries.
-- KEYS[1] ids   KEYS[2] meta   KEYS[3] change log
-- ARGV[1] change log MAXLEN (approximate)
-- Returns {count, revision, newest change log id or '', oldest change log id or ''}: the
-- revision changes whenever the set of records does; a reader that saw log entries up to some
-- id catches up by reading after it, unless the oldest id shows the log was trimmed past it.
-- Errors: RMEM_CORRUPT when the revision is not an integer (see _damage.lua).
--!include _time.lua
--!include _damage.lua

local refused = bad_revision(KEYS[2])
if refused then return refused end
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms())
local rev
if #expired > 0 then
  for _, id in ipairs(expired) do
    redis.call('ZREM', KEYS[1], id)
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[1], '*', 'k', 'exp', 'i', id, 's', '')
  end
  rev = redis.call('HINCRBY', KEYS[2], 'rev', 1)
else
  rev = tonumber(redis.call('HGET', KEYS[2], 'rev')) or 0
end
local newest = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
local oldest = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', 1)
return {redis.call('ZCARD', KEYS[1]), rev, newest[1] and newest[1][1] or '',
  oldest[1] and oldest[1][1] or ''}
