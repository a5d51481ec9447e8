-- _session_drop: removing messages, for session_clear and session_delete (included after
-- _session.lua; not a script on its own).

local FIXED = {'v', 'created', 'updated', 'anchor', 'count', 'bytes', 'rev', 'ttl', 'sliding',
  'pst', 'clr', 'del', 'ht', 'top'}

-- The stamp a clear or delete removes messages up to: a clear or delete made now removes every
-- message Redis holds, so it goes after the newest one when that one is stamped at or after
-- it (STAMP changes; the change log and the hint carry the new one). A replayed one keeps its
-- stamp and leaves newer messages alone (last writer wins). Returns the newest message's
-- stamp (nil when there is none).
local function settle_stamp()
  local newest = newest_stamp()
  if newest and newest >= STAMP and not REPLAYED then STAMP = stamp_after(newest, STAMP) end
  return newest
end

-- Remove the messages stamped at or before `stamp`; returns how many went and their bytes.
local function drop_through(stamp)
  local upto = '(' .. stamp .. '\255'
  local gone = redis.call('ZRANGEBYLEX', MSGS, '-', upto)
  local bytes = 0
  for _, member in ipairs(gone) do
    local nul = string.find(member, '\0', 43, true)
    redis.call('HDEL', META, '#' .. string.sub(member, 43, nul - 1))
    bytes = bytes + #member - nul
  end
  if #gone > 0 then redis.call('ZREMRANGEBYLEX', MSGS, '-', upto) end
  return #gone, bytes
end

-- Count the messages and their bytes from the msgs set itself: what clear and delete write
-- when the counters in the meta hash were damaged.
local function recount()
  if redis.call('TYPE', MSGS)['ok'] ~= 'zset' then return 0, 0 end
  local count, bytes = 0, 0
  for _, member in ipairs(redis.call('ZRANGE', MSGS, 0, -1)) do
    local nul = string.find(member, '\0', 43, true) or #member
    count, bytes = count + 1, bytes + #member - nul
  end
  return count, bytes
end

-- Replace the meta hash by its fixed fields (dropping every '#<id>' field) with changes applied.
local function reset_meta(changes)
  local cur = redis.call('HMGET', META, unpack(FIXED))
  local fields = {}
  for i, name in ipairs(FIXED) do
    local value = changes[name]
    if value == nil then value = cur[i] end
    if value then
      fields[#fields + 1] = name
      fields[#fields + 1] = value
    end
  end
  redis.call('DEL', META)
  if #fields > 0 then redis.call('HSET', META, unpack(fields)) end
end

-- The revision after `rev` (a number, or false when absent or damaged). A damaged revision
-- restarts from the server's time in ms, above any revision a session reaches by counting its
-- writes: a replica that held the session before the damage takes what comes next as newer.
local function next_rev(rev, damaged, now)
  if rev then return rev + 1 end
  if damaged then return now end
  return 1
end
