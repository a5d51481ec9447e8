-- _meta: refusing what something else wrote into a session's meta hash (included by the
-- session scripts; not a script on its own).
-- The integer fields the scripts read (created, count, bytes, rev, ttl, sliding, anchor,
-- updated) hold what rmem wrote: a decimal integer of at most 18 characters. Anything else was
-- written by something else: tonumber() would read it as nil (a read then answered as if the
-- session did not exist) or accept '1e3', ' 7' or '0x10'. Each script checks the integer
-- fields it reads, right after reading them and before it writes anything, and returns
-- 'RMEM_CORRUPT <meta key>\t<what>' (see _damage.lua) for the first that holds anything else.
-- session_delete and session_clear heal instead (see their headers). A script reads only the
-- fields it needs: each field read costs every call of it.
--!include _damage.lua

local find = string.find

-- Check values[1..n], the fields names[1..n] of the meta hash `key` as HMGET returned them.
-- Returns nil when each is absent or an integer, else the RMEM_CORRUPT error naming the first
-- that is not, unless `heals` (a set of names, optional) holds its name: such a value is
-- replaced by false in `values` and its name put in the set returned second, for the caller
-- to rewrite.
local function check_integers(key, names, values, n, heals)
  local bad
  for i = 1, n do
    local v = values[i]
    if v and not (#v <= 18 and find(v, '^%-?%d+$')) then
      local name = names[i]
      if not (heals and heals[name]) then
        return corrupt(key, "field '" .. name .. "' is not an integer")
      end
      values[i] = false
      bad = bad or {}
      bad[name] = true
    end
  end
  return nil, bad
end
