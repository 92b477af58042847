-- flapping-partitions.lua: the network splits and heals every few hundred
-- milliseconds, each time along a different random line.
--
-- Elections pile up, many requests time out as "unknown", and still the
-- history must be linearizable and no acknowledged write may be lost.
-- The random lines follow --seed: the same seed flaps the same way.

local c = cluster.start { nodes = 5 }
c:await_leader { timeout = 5 }
local w = c:workload { clients = 8, keys = 10, mix = { put = 0.5, get = 0.4, cas = 0.1 }, rate = 400, duration = 60 }
w:start()
local nodes = c:nodes()
for i = 1, 10 do
  -- A random split: two nodes against the other three.
  local a, b = random(#nodes), random(#nodes)
  if a == b then b = a % #nodes + 1 end
  local small = { nodes[a], nodes[b] }
  c:partition(small, c:others(small))
  sleep(0.25 + random() * 0.25)
  c:heal()
  sleep(0.15)
end
c:await_leader { timeout = 5 }
sleep(1)
local h = w:stop()
check.linearizable(h, { timeout = 30 })
check.no_lost_writes(h, c)
check.convergence(c)
report.note("elections", c:stats().elections)
