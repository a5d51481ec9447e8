-- memory_count: count the live memory records of a namespace, first dropping the ids of
-- records whose TTL has passed (their hashes are gone already).
-- KEYS[1] ids   KEYS[2] meta
-- Returns {count, revision}; the revision changes whenever the set of records does.
--!include _time.lua

local pruned = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms())
local rev
if pruned > 0 then
  rev = redis.call('HINCRBY', KEYS[2], 'rev', 1)
else
  rev = tonumber(redis.call('HGET', KEYS[2], 'rev')) or 0
end
return {redis.call('ZCARD', KEYS[1]), rev}
