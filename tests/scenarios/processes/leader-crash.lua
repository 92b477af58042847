-- On processes: the Raft leader is SIGKILLed under a workload, a new one is
-- elected, the old one restarts from its files (a new process), and no
-- acknowledged write is lost.
local c = cluster.start { nodes = 3, processes = true }
local old = c:await_leader { timeout = 5 }
log("pid", c:pid(old), "leads")
local w = c:workload { clients = 4, keys = 8, mix = { put = 0.5, get = 0.3, cas = 0.2 }, rate = 300, duration = 10 }
w:start()
sleep(0.7)
local killed = c:pid(old)
c:crash(old)                                  -- SIGKILL
check.that("the crashed node has no process", c:pid(old) == nil, tostring(c:pid(old)))
log("killed pid", killed)
local new = c:await_leader { timeout = 5, other_than = old }
sleep(0.5)
c:restart(old)                                -- the same ports and directory
log("restarted pid", c:pid(old))
sleep(0.7)
local h = w:stop()
c:await_leader { timeout = 5 }
log("new leader", new, "ops", h:len())
check.that("writes were acknowledged across the crash", h:counts().ok > 100, tostring(h:counts().ok))
check.linearizable(history(c))
check.no_lost_writes(h, c)
check.convergence(c)
