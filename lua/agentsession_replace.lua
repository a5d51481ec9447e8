-- agentsession_replace: replace every message of a session in one atomic step: session_clear,
-- then session_append, run as one script (the OpenAI Agents SDK's history compaction, see
-- rmem/integrations/openai_agents.py). Both scripts are included as they are, so their rules
-- (stamps, last-writer-wins, TTL policy, change log and sync hints) apply unchanged.
-- KEYS[1] meta hash   KEYS[2] msgs sorted set   KEYS[3] change log stream
-- ARGV[1] n, how many of the arguments that follow are session_clear's
-- ARGV[2..n+1] session_clear's ARGV (channel, session id, change log MAXLEN, stamp, bound)
-- ARGV[n+2..] session_append's ARGV; its stamp must be later than the clear's
-- Returns {session_clear's reply, session_append's reply}, or the first error reply (the
--   clear refuses a stamp before it writes; the append's checks pass whenever the clear's do,
--   as both stamps come from one clock a moment apart).

local all, n = {}, tonumber(ARGV[1])
for i = 2, #ARGV do all[#all + 1] = ARGV[i] end

-- Each included script reads its own ARGV: refill the table in place before running it.
local function use(from, to)
  for i = #ARGV, 1, -1 do ARGV[i] = nil end
  for i = from, to do ARGV[#ARGV + 1] = all[i] end
end

local function clear()
--!include session_clear.lua
end

local function append()
--!include session_append.lua
end

use(1, n)
local cleared = clear()
if type(cleared) == 'table' and cleared.err then return cleared end
use(n + 1, #all)
local appended = append()
if type(appended) == 'table' and appended.err then return appended end
return {cleared, appended}
