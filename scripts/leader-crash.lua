-- leader-crash.lua: kill the leader under load, twice, and restart it.
--
-- What to look for: writes in flight at the crash come back "unknown"
-- (the client cannot tell whether they were applied); the history is
-- still linearizable, and every acknowledged write survives.

local c = cluster.start { nodes = 3 }
c:await_leader { timeout = 5 }

local w = c:workload { clients = 6, keys = 10, mix = { put = 0.5, get = 0.4, cas = 0.1 }, rate = 300, duration = 30 }
w:start()

for round = 1, 2 do
  sleep(1)
  local victim = c:leader()
  log("round", round, ": crashing leader", victim)
  c:crash(victim)
  local next_leader = c:await_leader { timeout = 5 }
  log("new leader", next_leader)
  sleep(1)
  c:restart(victim)
end
sleep(1)

local h = w:stop()
check.linearizable(h)
check.no_lost_writes(h, c)
check.convergence(c)
check.that("a new leader was elected after each crash", c:stats().elections >= 3)
