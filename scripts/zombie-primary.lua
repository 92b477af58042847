-- zombie-primary.lua: a primary freezes (a long GC pause, a stalled VM)
-- for longer than the failure detector's timeout, a successor takes over,
-- and then the old primary wakes up believing it still leads.
--
--   replab compare scripts/zombie-primary.lua --variant raft@config/raft.toml \
--       --variant quorum@config/primary-backup-quorum.toml --variant async@config/primary-backup-async.toml
--
-- The primary is cut off from the other nodes as it freezes, so when it
-- resumes nothing tells it about the new leader for a while (the network
-- heals 1.5 s later). A client bound to it keeps writing fresh keys to it,
-- one after another, and does not follow redirects.
--
-- What it should show:
-- * raft and primary-backup quorum: the zombie acknowledges nothing after
--   it resumes. A write needs a majority, and the majority already follows
--   a newer leader (a higher term or generation). Every check passes.
-- * primary-backup async: the zombie acknowledges every write once it is
--   on its own disk, so the pinned client's writes succeed. When the
--   network heals the zombie sees the higher generation, steps down and
--   rolls back to the new primary's history: those writes vanish.
--   "the resumed old leader acknowledged no write" fails, and
--   check.no_lost_writes counts what was lost.
-- * primary-backup sync: like quorum (a write needs every member).

local c = cluster.start { nodes = 3 }
local old = c:await_leader { timeout = 10 }
local w = c:workload { clients = 4, keys = 8, mix = { put = 0.5, get = 0.5 }, rate = 200, duration = 30 }
w:start()
sleep(0.5)

local pinned = c:client { node = old }   -- never redirected elsewhere
c:isolate(old)
c:pause(old)
local new = c:await_leader { timeout = 10, other_than = old }
log("node", old, "is paused; node", new, "leads now")
sleep(0.5)

c:resume(old)
local resumed_at = now()
local writer = spawn(function()
  local acked, n = 0, 0
  while now() - resumed_at < 1.5 do
    n = n + 1
    if pinned:put(string.format("zombie-%d", n), "stale") == true then acked = acked + 1 end
  end
  return acked, n
end)
local acked, attempted = writer:join()
log(string.format("the zombie acknowledged %d of %d writes after it resumed", acked, attempted))
c:heal()
sleep(2)
local s = c:status()[old]
log("node", old, "is now", s.role, "in term", s.term)
w:stop()
local h = history(c)
report.note("writes the zombie acknowledged after it resumed", acked)
check.that("the resumed old leader acknowledged no write", acked == 0,
  string.format("it acknowledged %d of %d writes", acked, attempted))
check.that("the old leader stepped down", s.up and s.role ~= "leader", "role " .. tostring(s.role))
check.linearizable(h)
check.no_lost_writes(h, c)
check.convergence(c)
