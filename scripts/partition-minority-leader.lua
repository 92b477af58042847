-- partition-minority-leader.lua: the leader ends up alone in a minority.
--
-- The majority side elects a new leader and keeps serving; the old leader
-- cannot commit anything (no quorum) and, with CheckQuorum, steps down.
-- Writes sent to it time out as "unknown". After the heal it rejoins as a
-- follower. Nothing acknowledged is lost; reads stay linearizable.

local c = cluster.start { nodes = 5 }
local old = c:await_leader { timeout = 5 }
local others = c:others(old)
local minority = { old, others[1] }
local majority = { others[2], others[3], others[4] }

local w = c:workload { clients = 8, keys = 12, mix = { put = 0.5, get = 0.5 }, rate = 400, duration = 30 }
w:start()
sleep(1)
c:partition(minority, majority)
log("partitioned", old, "and", others[1], "from the other three")
local new = c:await_leader { timeout = 5, other_than = old }
check.that("the majority elected a leader of its own", new ~= old, "leader " .. tostring(new))
sleep(2)
c:heal()
sleep(1.5)
local h = w:stop()

check.linearizable(h)
check.no_lost_writes(h, c)
check.convergence(c)
