-- The operator's calls on processes: a clean stop (SIGTERM) and restart,
-- a wiped disk that catches up, and a leader transfer; writes go on
-- throughout and none acknowledged is lost.
local c = cluster.start { nodes = 3, processes = true }
local leader = c:await_leader { timeout = 5 }
local w = c:workload { clients = 2, keys = 8, mix = { put = 0.6, get = 0.4 }, rate = 200, duration = 20 }
w:start()
local follower = c:others(leader)[1]
local before = c:pid(follower)
c:stop(follower)                              -- SIGTERM, waits for the exit
check.that("a stopped node has no process", c:pid(follower) == nil, tostring(c:pid(follower)))
c:restart(follower)
check.that("a restart is a new process", c:pid(follower) ~= nil and c:pid(follower) ~= before,
  tostring(before) .. " -> " .. tostring(c:pid(follower)))
sleep(0.5)
local other = c:others({ leader, follower })[1]
c:crash(other)
c:wipe(other)
c:restart(other)
sleep(1)
local target = c:others(c:leader())[1]
check.that("leadership moves to the node asked for", c:transfer_leader(target), "transfer to " .. target)
sleep(0.5)
local h = w:stop()
c:await_leader { timeout = 5 }
log("stopped and restarted", follower, "wiped", other, "leader now", c:leader())
check.that("writes were acknowledged throughout", h:counts().ok > 100, tostring(h:counts().ok))
check.linearizable(history(c))
check.no_lost_writes(h, c)
check.convergence(c)
