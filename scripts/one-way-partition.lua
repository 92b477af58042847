-- one-way-partition.lua: the leader can hear its followers but they can
-- no longer hear it (its outgoing links are cut; replies still arrive).
--
-- TCP alone can never do this; the fault layer acts on the sender's side.
-- The followers stop receiving heartbeats and elect a new leader; the old
-- leader learns of the new term from their messages and steps down.

local c = cluster.start { nodes = 3 }
local old = c:await_leader { timeout = 5 }
local w = c:workload { clients = 4, keys = 8, mix = { put = 0.5, get = 0.5 }, rate = 300, duration = 30 }
w:start()
sleep(1)
for _, peer in ipairs(c:others(old)) do
  c:cut(old, peer)                   -- old -> peer only
end
local new = c:await_leader { timeout = 5, other_than = old }
check.that("the followers elected a new leader", new ~= old)
sleep(1.5)
c:heal()
sleep(1)
local h = w:stop()
check.linearizable(h)
check.no_lost_writes(h, c)
check.convergence(c)
