-- _damage: refusing data that something else wrote into rmem's keys (included by the memory
-- scripts; not a script on its own).
-- A script that finds such data returns the error 'RMEM_CORRUPT <key>\t<what>' before it
-- writes anything; rmem._errors turns it into CorruptDataError naming the key. A tab ends the
-- key because keys may hold spaces (record ids do) but never a control character.

local function corrupt(key, what)
  return redis.error_reply('RMEM_CORRUPT ' .. key .. '\t' .. what)
end

-- The error for a hash whose 'rev' is not the integer HINCRBY needs, else nil. Checked first:
-- HINCRBY comes last in a script, after its other writes, which an error would not undo.
local function bad_revision(key)
  local rev = redis.call('HGET', key, 'rev')
  if rev and not (string.find(rev, '^%-?%d+$') and #rev <= 18) then
    return corrupt(key, 'field rev is not an integer')
  end
  return nil
end
