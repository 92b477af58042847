-- rolling-restart.lua: restart every node in turn, as an upgrade would,
-- waiting for a leader between steps. The service stays available except
-- for the moment a leader restarts.

local c = cluster.start { nodes = 3, wal = { fsync = "always" } }
c:await_leader { timeout = 5 }
local w = c:workload { clients = 4, keys = 8, mix = { put = 0.5, get = 0.5 }, rate = 300, duration = 60 }
w:start()
for _, id in ipairs(c:nodes()) do
  sleep(0.7)
  log("restarting node", id)
  c:crash(id)
  sleep(0.3)
  c:restart(id)
  c:await_leader { timeout = 5 }
end
sleep(1)
local h = w:stop()
check.linearizable(h)
check.no_lost_writes(h, c)
check.convergence(c)
