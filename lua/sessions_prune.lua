-- sessions_prune: drop sessions from a namespace's listing, only if still listed with the
-- given creation score (a session re-created meanwhile has a new score and stays listed).
-- KEYS[1] the namespace's sessions sorted set
-- ARGV pairs of (session id, creation score in ms)
-- Returns how many entries were removed.

local removed = 0
for i = 1, #ARGV, 2 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) == tonumber(ARGV[i + 1]) then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return removed
