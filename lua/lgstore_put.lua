-- lgstore_put: write or delete items of a LangGraph store (rmem.integrations.langgraph).
-- KEYS[1] namespace registry (zset: encoded namespace -> last expiry ms, 'inf' for none)
-- KEYS[2] store meta hash (field seq: the write counter that orders listings)
-- KEYS[3..] per item, in order: item hash, key zset of its namespace, then v vector hashes
-- ARGV[1] the sync channel of the rmem namespace (rmem._keys.sync_channel)
-- ARGV[2..] per item: encoded namespace, key, ttl ms (0 = none, -1 = delete the item),
--   v (vector keys given), n (new vectors, n <= v), packed value, anc tokens, kv tokens,
--   then the n vectors as float bytes
-- Returns {0} once everything is written, or, when some item holds more stored vectors than
--   keys were given for it, {-1, item number (1-based), stored vectors, ...} and writes nothing
--   (the caller sends the batch again with those keys).
-- Once written, one PUBLISH on the sync channel names every item written or deleted, so the
--   item caches of other clients drop them (rmem._replica._parse_item_hint):
--   'lg' then, per item, '\n' .. byte length .. '\n' .. encoded namespace .. '/' .. key.

local REG, META = KEYS[1], KEYS[2]
local CHANNEL = ARGV[1]
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])

-- First pass: every item must have a key for each vector it holds, or nothing is written.
local short, a, k, item = {}, 2, 3, 0
while a <= #ARGV do
  item = item + 1
  local v, n = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  local held = tonumber(redis.call('HGET', KEYS[k], 'nv')) or 0
  if held > v then
    short[#short + 1] = item
    short[#short + 1] = held
  end
  a = a + 8 + n
  k = k + 2 + v
end
if #short > 0 then
  table.insert(short, 1, -1)
  return short
end

local function expire(key, ttl)
  if ttl > 0 then redis.call('PEXPIRE', key, ttl) else redis.call('PERSIST', key) end
end

local hint = {'lg'}
a, k = 2, 3
while a <= #ARGV do
  local path, key, ttl = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  local ref = path .. '/' .. key
  hint[#hint + 1] = '\n' .. #ref .. '\n' .. ref
  local v, n = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  local ikey, zkey = KEYS[k], KEYS[k + 1]
  local old = redis.call('HMGET', ikey, 'created', 'updated', 'nv')
  local held = tonumber(old[3]) or 0
  if ttl < 0 then
    if old[1] then redis.call('DEL', ikey) end
    for j = 1, held do redis.call('DEL', KEYS[k + 1 + j]) end
    redis.call('ZREM', zkey, key)
  else
    local updated = now_us
    if old[2] and tonumber(old[2]) >= updated then updated = tonumber(old[2]) + 1 end
    updated = string.format('%d', updated)
    local exp = 0
    if ttl > 0 then exp = now_ms + ttl end
    local anc, kv = ARGV[a + 6], ARGV[a + 7]
    redis.call('HSET', ikey, 'ns', path, 'key', key, 'val', ARGV[a + 5],
      'created', old[1] or updated, 'updated', updated,
      'seq', redis.call('HINCRBY', META, 'seq', 1), 'ttl', ttl, 'exp', exp, 'nv', n,
      'anc', anc, 'kv', kv)
    expire(ikey, ttl)
    for j = 1, n do
      local vkey = KEYS[k + 1 + j]
      redis.call('HSET', vkey, 'item', ikey, 'anc', anc, 'kv', kv, 'exp', exp,
        'vec', ARGV[a + 7 + j])
      expire(vkey, ttl)
    end
    for j = n + 1, held do redis.call('DEL', KEYS[k + 1 + j]) end
    if exp > 0 then redis.call('ZADD', zkey, exp, key) else redis.call('ZADD', zkey, 'inf', key) end
  end
  -- The namespace is listed while any of its keys lives: its score is its last expiry.
  redis.call('ZREMRANGEBYSCORE', zkey, '-inf', now_ms)
  local last = redis.call('ZRANGE', zkey, -1, -1, 'WITHSCORES')
  if #last == 0 then
    redis.call('ZREM', REG, path)
  else
    redis.call('ZADD', REG, last[2], path)
    if last[2] == 'inf' then redis.call('PERSIST', zkey) else redis.call('PEXPIREAT', zkey, last[2]) end
  end
  a = a + 8 + n
  k = k + 2 + v
end
if #hint > 1 then redis.call('PUBLISH', CHANNEL, table.concat(hint)) end
return {0}
