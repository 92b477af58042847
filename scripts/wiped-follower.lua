-- wiped-follower.lua: an operator replaces a follower's disk under load.
-- The node comes back with nothing. It cannot tell that from a first
-- start, so it assumes the worst: it neither votes nor campaigns until it
-- has caught up from the leader (it tells the leader it lost its state,
-- and the leader restarts its replication from scratch). It should end
-- with exactly what the others hold, and no acknowledged write is lost.

local c = cluster.start { nodes = 3 }
local leader = c:await_leader { timeout = 5 }
local follower = c:others(leader)[1]

local w = c:workload { clients = 4, keys = 8, mix = { put = 0.6, get = 0.4 }, rate = 300, duration = 30 }
w:start()
sleep(1)
c:crash(follower)
c:wipe(follower)
log("follower", follower, "lost its disk")
sleep(0.5)
c:restart(follower)
log("follower", follower, "restarted with an empty directory; it catches up before it may vote")
sleep(2)
local h = w:stop()

check.linearizable(h)
check.no_lost_writes(h, c)
check.convergence(c)     -- the wiped follower holds exactly what the others hold
local s = c:status()[follower]
check.that("the wiped follower caught up", s.up and s.applied == c:status()[c:leader()].applied,
  "follower applied " .. tostring(s.applied))
