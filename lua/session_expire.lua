-- session_expire: set a session's TTL policy and restart its clock now. A call made now wins
-- over the stored policy (its stamp moves after the stored one's when needed); a replayed one
-- follows last writer wins: stamped before the stored policy, it changes nothing.
-- KEYS[1] meta hash   KEYS[2] msgs sorted set   KEYS[3] change log stream
-- ARGV[1..5] channel, session id, change log MAXLEN, stamp, stamp bound (see _session.lua)
-- ARGV[6] ttl in ms (0 = keep forever)   ARGV[7] sliding (0|1|-1 = keep the stored flag)
-- Returns 1 when the session exists, 0 when it does not (nothing changes then).
-- Errors: RMEM_CORRUPT when created, sliding or rev is damaged (see _meta.lua), before anything
--   is written.
--!include _session.lua

local now = now_ms()
local refused = check_stamp(STAMP, now, BOUND)
if refused then return redis.error_reply(refused) end
local names = {'created', 'sliding', 'rev', 'pst'}
local m = redis.call('HMGET', META, unpack(names))
refused = check_integers(META, names, m, 3)
if refused then return refused end
if not m[1] then return 0 end
if not REPLAYED then follow(m[4]) end
if STAMP <= (m[4] or '') then return 1 end
local ttl, sliding = tonumber(ARGV[6]), ARGV[7]
if sliding == '-1' then sliding = m[2] or '0' end
local rev = (tonumber(m[3]) or 0) + 1
local exp = (ttl > 0 and sliding == '1') and now + ttl or 0  -- see session_append.lua
redis.call('HSET', META, 'ttl', ttl, 'sliding', sliding, 'anchor', now, 'pst', STAMP,
  'rev', rev, 'exp', exp)
record('p', rev, '')
apply_ttl(ttl, sliding == '1', now, -1)
return 1
