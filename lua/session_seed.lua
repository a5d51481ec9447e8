-- session_seed: write back a session a client's replica held into a Redis that came back
-- empty (docs/reliability.md; the local store is seeded with plain commands instead, see
-- rmem/_fallback.py). It adds to what the session holds by then: an append may have
-- re-created it first, and a write-back that set the replica's count over it would count that
-- append's messages nowhere.
-- Messages go in as an append puts them: each id once, with the stamp, batch index and
-- payload it was first written with, none stamped at or before the session's last clear or
-- delete. count and bytes count on from what is stored.
-- KEYS[1] meta hash   KEYS[2] msgs sorted set   KEYS[3] change log stream
-- ARGV[1..5] as for every session script (_session.lua): channel, session id, change log
--   MAXLEN, stamp (the newest message's), stamp bound; only the session id is used
-- ARGV[6] created ms   ARGV[7] updated ms   ARGV[8] the revision the replica held
-- ARGV[9] ttl in ms (0 = keep forever)   ARGV[10] sliding (0|1)   ARGV[11] ms before the keys
--   expire (ignored when ttl is 0)
-- ARGV[12..] pairs of (message id, member), members as for session_append
-- A session that is stored keeps its TTL policy and 'updated' (the append that re-created it
-- set them), takes the earlier 'created' and a revision past both; one that is not takes
-- ARGV[6..11]. An absolute TTL counts from when the session was first created: when the
-- stored policy is the held one (same ttl, both absolute), the earlier anchor and expiry
-- win, so the append that re-created the session in the emptied Redis does not give it a
-- whole new TTL. A sliding TTL keeps the expiry that append restarted, as any append does.
-- Nothing is published: each client reloads its replicas when its recovery ends.
-- Errors: RMEM_CORRUPT when created, count, bytes, rev, ttl, sliding or anchor in the meta
--   hash is damaged (see _meta.lua); nothing is written.
-- Returns how many messages were added.
--!include _session.lua

local nargs = #ARGV
if nargs < 13 or (nargs - 11) % 2 ~= 0 then
  return redis.error_reply('RMEM_ARGS session_seed takes 11 arguments, then (id, member)+')
end
local CHUNK = 1000  -- fields per HMGET and values per HSET or ZADD: unpack() stops near 8000
local n = (nargs - 11) / 2

-- m[1..NF] are these meta fields; m[NF + k] is the stamp stored for message k's id, if any.
local NF = 10
local fields = {'created', 'count', 'bytes', 'rev', 'ttl', 'sliding', 'anchor', 'clr', 'del', 'top'}
for k = 1, n do fields[NF + k] = '#' .. ARGV[10 + 2 * k] end
local m = {}
for from = 1, NF + n, CHUNK do
  local part = redis.call('HMGET', META, unpack(fields, from, math.min(from + CHUNK - 1, NF + n)))
  for i = 1, #part do m[from + i - 1] = part[i] end
end
local refused = check_integers(META, fields, m, 7)
if refused then return refused end

local exists = m[1] ~= false
local count, bytes, rev = tonumber(m[2]) or 0, tonumber(m[3]) or 0, tonumber(m[4]) or 0
local floor = m[8] or ''
if m[9] and m[9] > floor then floor = m[9] end
if not exists then
  -- Leftovers of an expiring or deleted session never carry over (as in session_append).
  redis.call('DEL', MSGS)
  count, bytes = 0, 0
end

local hset, zadd, seen, added, top = {}, {}, {}, 0, m[10] or ''
for k = 1, n do
  local id, member = ARGV[10 + 2 * k], ARGV[11 + 2 * k]
  local stamp = string.sub(member, 1, 36)
  if stamp > floor and not m[NF + k] and not seen[id] then
    seen[id] = true
    added = added + 1
    bytes = bytes + #member - 43 - #id
    hset[2 * added - 1], hset[2 * added] = fields[NF + k], stamp
    zadd[2 * added - 1], zadd[2 * added] = 0, member
    if stamp > top then top = stamp end
  end
end
if added == 0 then return 0 end

count = count + added
local held_rev, created = tonumber(ARGV[8]), tonumber(ARGV[6])
local ttl, sliding, left = tonumber(ARGV[9]), ARGV[10], tonumber(ARGV[11])
local now = now_ms()
local tail, expire_at
if exists then
  if tonumber(m[1]) < created then created = tonumber(m[1]) end
  tail = {'count', count, 'bytes', bytes, 'rev', math.max(rev, held_rev) + 1, 'created', created}
  if ttl > 0 and sliding == '0' and tonumber(m[5]) == ttl and m[6] == '0' then
    local anchor = now + left - ttl
    if anchor < (tonumber(m[7]) or now) then
      tail[#tail + 1] = 'anchor'
      tail[#tail + 1] = anchor
      expire_at = anchor + ttl
    end
  end
else
  if m[9] then redis.call('HDEL', META, 'del') end
  local anchor = now
  if ttl > 0 then anchor = now + left - ttl end
  tail = {'count', count, 'bytes', bytes, 'rev', held_rev, 'created', created,
    'updated', ARGV[7], 'ttl', ttl, 'sliding', sliding, 'anchor', anchor, 'v', 2, 'ht', HT}
  if ttl > 0 and sliding == '1' then
    tail[#tail + 1] = 'exp'
    tail[#tail + 1] = now + left
  end
end
for i = 1, #tail do hset[#hset + 1] = tail[i] end
if top ~= (m[10] or '') then  -- the newest message's stamp (see session_append)
  hset[#hset + 1] = 'top'
  hset[#hset + 1] = top
end
call_chunked('HSET', META, hset, 2 * CHUNK)
call_chunked('ZADD', MSGS, zadd, 2 * CHUNK)
if not exists and ttl > 0 then
  for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], left) end
elseif expire_at then
  for i = 1, #KEYS do redis.call('PEXPIREAT', KEYS[i], expire_at) end
end
return added
