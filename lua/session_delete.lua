-- session_delete: remove a session and all its keys.
-- KEYS[1] meta hash   KEYS[2] log stream   KEYS[3] ids hash
-- Returns the deleted session's creation time in ms (the client uses it to drop the session
-- from the namespace listing without racing a re-creation), or 0 when it did not exist.

local created = redis.call('HGET', KEYS[1], 'created')
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return tonumber(created) or 0
