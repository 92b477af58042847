-- quickstart.lua: the tour. A 3-node Raft cluster takes a mixed workload;
-- we kill the leader in the middle, bring it back, and check that what
-- the clients saw is linearizable and that no acknowledged write was lost.
--
--   replab run scripts/quickstart.lua
--   replab run scripts/quickstart.lua --out results/    (history + results.json)

local c = cluster.start { nodes = 3 }
local leader = c:await_leader { timeout = 5 }
log("leader is node", leader)

-- 8 clients over 16 keys, half reads and half writes, at most 400 ops/s.
local w = c:workload { clients = 8, keys = 16, mix = { put = 0.5, get = 0.5 }, rate = 400, duration = 30 }
w:start()

sleep(1.5)
c:crash(leader)                      -- SIGKILL semantics: memory gone, files kept
local new_leader = c:await_leader { timeout = 5 }
log("after the crash node", new_leader, "leads")
sleep(1.5)
c:restart(leader)                    -- recovers from its log and catches up
sleep(1.5)

local h = w:stop()                   -- the recorded history
local counts = h:counts()
log("operations:", counts.ok, "ok,", counts.fail, "failed,", counts.unknown, "unknown")

check.linearizable(h)                -- fails the run with a witness if not
check.no_lost_writes(h, c)           -- every acknowledged write is still there
check.convergence(c)                 -- all replicas hold the same data
report.note("elections won", c:stats().elections)
