-- session_touch: restart a session's TTL when its policy is sliding (reads count as use).
-- Not a change: nothing is logged or published.
-- KEYS[1] meta hash   KEYS[2] msgs sorted set   KEYS[3] change log stream
-- ARGV[1] (optional) '1': the caller ignores the time left (a read restarting a sliding TTL),
--   so a session that is not sliding answers 0 without a PTTL call, and a sliding TTL set
--   less than min(1 s, ttl / 10) ago is left as it is (docs/decisions.md, 30)
-- Returns the ms left before the session expires (-1 = never), or -2 when it does not exist.
-- Errors: RMEM_CORRUPT when created, ttl or sliding is damaged (see _meta.lua), before any
--   TTL is touched.
--!include _meta.lua
--!include _time.lua

local names = {'created', 'ttl', 'sliding', 'exp'}
local m = redis.call('HMGET', KEYS[1], 'created', 'ttl', 'sliding', 'exp')
local refused = check_integers(KEYS[1], names, m, 3)
if refused then return refused end
if not m[1] then return -2 end
local ttl = tonumber(m[2])
if ttl and ttl > 0 and m[3] == '1' then
  if ARGV[1] == '1' then
    -- A read: the TTL is restarted only when due, and the expiry noted (see _time.lua).
    local now = now_ms()
    local was = tonumber(m[4])
    if not ttl_restart_due(was, now, ttl) then return was - now end
    redis.call('HSET', KEYS[1], 'exp', now + ttl)
  end
  for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ttl) end
  return ttl
end
if ARGV[1] == '1' then return 0 end
return redis.call('PTTL', KEYS[1])
