-- _meta: reading a session's meta hash, refusing what something else wrote into it (included
-- by every session script; not a script on its own).
-- The integer fields (created, count, bytes, rev, ttl, sliding, anchor, updated, v) hold what
-- rmem wrote: a decimal integer of at most 18 digits, as HINCRBY keeps them. Anything else was
-- written by something else; tonumber() would read it as nil (a read then answered as if the
-- session did not exist) or accept '1e3', ' 7' or '0x10' (which HINCRBY then refuses, after the
-- script's other writes). So a script reads the hash with read_meta first and returns
-- 'RMEM_CORRUPT <meta key>\t<what>' (see _damage.lua) before it writes anything; only
-- session_delete and session_clear heal damaged fields (see their headers).
--!include _damage.lua

local META_FIELDS = {'created', 'count', 'bytes', 'rev', 'ttl', 'sliding', 'anchor', 'updated',
  'v', 'pst', 'clr', 'del'}
local N_INTEGER = 9  -- META_FIELDS[1..N_INTEGER] are integers; the others are clock stamps

-- Read the meta hash `key` into a table by field name: integers as numbers, stamps as strings,
-- absent fields nil; `exists` is true when the session lives (its hash holds 'created', even
-- a damaged one). Returns nil and the RMEM_CORRUPT error for the first integer field that holds
-- anything else, unless `heals` (a set of field names, optional) holds its name: that field is
-- then left out and named in the set `bad`, for the caller to rewrite.
local function read_meta(key, heals)
  local raw = redis.call('HMGET', key, unpack(META_FIELDS))
  local m = {exists = raw[1] ~= false}
  for i = 1, N_INTEGER do
    local value, name = raw[i], META_FIELDS[i]
    if not value then
      -- absent: stays nil
    elseif #value <= 18 and string.find(value, '^%-?%d+$') then
      m[name] = tonumber(value)
    elseif heals and heals[name] then
      m.bad = m.bad or {}
      m.bad[name] = true
    else
      return nil, corrupt(key, "field '" .. name .. "' is not an integer")
    end
  end
  for i = N_INTEGER + 1, #META_FIELDS do m[META_FIELDS[i]] = raw[i] or nil end
  return m
end

-- The revision after `m`'s. A damaged revision restarts from the server's time in ms, above
-- any revision a session reaches by counting its writes: a replica that held the session
-- before the damage still takes what comes next as newer.
local function next_rev(m, now)
  if m.rev then return m.rev + 1 end
  if m.bad and m.bad.rev then return now end
  return 1
end
