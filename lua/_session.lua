-- _session: helpers included by the session_* scripts (not a script on its own).
-- The meta hash holds: v (format), created, updated, anchor (ms the absolute TTL counts from),
-- count, bytes, rev (revision), ttl (ms, 0 = keep forever), sliding (0|1).

--!include _time.lua

-- Give every key of the session the same expiry, so a history never expires in part.
local function apply_ttl(ttl, sliding, anchor)
  if ttl > 0 then
    if sliding == 1 then
      for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ttl) end
    else
      for i = 1, #KEYS do redis.call('PEXPIREAT', KEYS[i], anchor + ttl) end
    end
  else
    for i = 1, #KEYS do redis.call('PERSIST', KEYS[i]) end
  end
end

-- Apply the TTL policy stored in the meta hash (pops and clears use this).
local function apply_stored_ttl(meta)
  local p = redis.call('HMGET', meta, 'ttl', 'sliding', 'anchor')
  apply_ttl(tonumber(p[1]) or 0, tonumber(p[2]) or 0, tonumber(p[3]) or 0)
end
