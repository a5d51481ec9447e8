-- lgstore_touch: restart the TTL of LangGraph store items that were just read (refresh_ttl).
-- KEYS[1] namespace registry (zset: encoded namespace -> last expiry ms, 'inf' for none)
-- KEYS[2..] per item, in order: item hash, key zset of its namespace, then its vector hashes
-- ARGV[1..] per item: encoded namespace, key, seq read, number of vector keys given
-- Only an item still holding the version that was read (same seq) and a TTL is touched: a
-- newer write set its own TTL, and a deleted or expired item is not brought back.
-- Returns the number of items touched.

local REG = KEYS[1]
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local touched, a, k = 0, 1, 2
while a <= #ARGV do
  local path, key, seq, v = ARGV[a], ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3])
  local ikey, zkey = KEYS[k], KEYS[k + 1]
  local cur = redis.call('HMGET', ikey, 'seq', 'ttl', 'nv')
  local ttl, held = tonumber(cur[2]) or 0, tonumber(cur[3]) or 0
  if cur[1] == seq and ttl > 0 and held <= v then
    local exp = now_ms + ttl
    redis.call('PEXPIRE', ikey, ttl)
    redis.call('HSET', ikey, 'exp', exp)
    for j = 1, held do
      redis.call('PEXPIRE', KEYS[k + 1 + j], ttl)
      redis.call('HSET', KEYS[k + 1 + j], 'exp', exp)
    end
    redis.call('ZADD', zkey, exp, key)
    local last = redis.call('ZRANGE', zkey, -1, -1, 'WITHSCORES')
    redis.call('ZADD', REG, last[2], path)
    if last[2] ~= 'inf' then redis.call('PEXPIREAT', zkey, last[2]) end
    touched = touched + 1
  end
  a = a + 4
  k = k + 2 + v
end
return touched
