-- lossy-network.lua: every link drops 20% of messages, duplicates 20%
-- and reorders 20%. Raft retransmits, ignores duplicates and stale
-- messages, and stays correct; throughput and latency pay the price.

local c = cluster.start { nodes = 3 }
c:await_leader { timeout = 5 }
local nodes = c:nodes()
for _, a in ipairs(nodes) do
  for _, b in ipairs(nodes) do
    if a ~= b then
      c:link(a, b, { drop = 0.2, duplicate = 0.2, reorder = 0.2, reorder_window_ms = 20 })
    end
  end
end
local w = c:workload { clients = 6, keys = 10, mix = { put = 0.5, get = 0.5 }, rate = 200, duration = 4 }
local h = w:run()                    -- start, run the whole duration, stop
c:heal()
check.linearizable(h)
check.no_lost_writes(h, c)
check.convergence(c)
