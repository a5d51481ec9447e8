-- _stamp: the future bound on clock stamps (included by _memory.lua and _session.lua).
--!include _time.lua

-- Refuse a stamp whose wall time is more than bound ms ahead of the server's clock: a client
-- with a clock far in the future would otherwise win every conflict until time caught up.
local function check_stamp(stamp, now, bound)
  local wall = tonumber(string.sub(stamp, 1, 12), 16)
  if #stamp ~= 36 or not wall then
    return 'RMEM_VALIDATION malformed clock stamp ' .. stamp
  end
  if wall - now > bound then
    return 'RMEM_VALIDATION a write stamped ' .. (wall - now) .. ' ms ahead of the Redis ' ..
      'clock was refused (max_stamp_ahead_ms=' .. bound .. '): check this host\'s clock'
  end
  return nil
end

-- 12, 6 and 16 hex digits, written out: a pattern built with rep() and .. would be built again
-- on every call of every script that includes this file.
local STAMP_SHAPE = '^[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]%-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]%-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]$'

-- True when s is a clock stamp as rmem writes them. Last writer wins compares stamps as
-- strings, so a stored value of another shape would win or lose every comparison.
local function is_stamp(s)
  return s and string.find(s, STAMP_SHAPE) ~= nil
end

-- A write's stamp bound argument: the most ms its stamp may be ahead of TIME, with an 'r'
-- before it when the call is replayed from a client's fallback outbox (or writes back what
-- a client held: rmem._fallback.replayed_args). Returns (replayed, bound).
-- A write made now is placed in the order Redis runs it: it takes the least stamp after
-- whatever stored stamp it would otherwise lose to (docs/decisions.md, 41 and 42). A replayed
-- write was made while its client could not reach Redis, so its own stamp places it: last
-- writer wins against what others wrote meanwhile.
local function stamp_bound(arg)
  if string.byte(arg) == 114 then return true, tonumber(string.sub(arg, 2)) end  -- 'r'
  return false, tonumber(arg)
end

-- The least stamp after `stamp` that carries the node id of `mine`: the next counter in the
-- same millisecond (the next millisecond when the counter is full).
local function stamp_after(stamp, mine)
  local wall = tonumber(string.sub(stamp, 1, 12), 16)
  local counter = tonumber(string.sub(stamp, 14, 19), 16) + 1
  if counter > 16777215 then wall, counter = wall + 1, 0 end
  return string.format('%012x-%06x-', wall, counter) .. string.sub(mine, 21, 36)
end

-- `mine` moved after `other` unless it is already after it; nil, '' and a value that is not
-- a stamp (damage written by something else) leave it as it is.
local function later_than(mine, other)
  if other and other >= mine and is_stamp(other) then return stamp_after(other, mine) end
  return mine
end
