-- follower-restart.lua: a follower goes down, the cluster keeps going on
-- the remaining majority, and the follower catches up when it returns.

local c = cluster.start { nodes = 3 }
local leader = c:await_leader { timeout = 5 }
local follower = c:others(leader)[1]

local w = c:workload { clients = 4, keys = 8, mix = { put = 0.6, get = 0.4 }, rate = 300, duration = 30 }
w:start()
sleep(1)
c:crash(follower)
log("follower", follower, "is down; two of three nodes still form a majority")
sleep(2)
c:restart(follower)
log("follower", follower, "restarted; it replays its log and catches up")
sleep(1.5)
local h = w:stop()

check.linearizable(h)
check.no_lost_writes(h, c)
check.convergence(c)     -- the restarted follower holds exactly what the others hold
local s = c:status()[follower]
check.that("the follower caught up", s.up and s.applied == c:status()[leader].applied,
  "follower applied " .. tostring(s.applied))
