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
