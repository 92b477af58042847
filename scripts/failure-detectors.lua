-- failure-detectors.lua: gossip (phi-accrual) against fixed-timeout
-- heartbeats, on the same faults.
--
-- What to look for: with the link between nodes 1 and 3 cut both ways,
-- the gossip detector on node 1 keeps node 3 alive, because node 2 relays
-- node 3's heartbeat counter; the heartbeat detector, which believes only
-- what it hears itself, suspects node 3. Both declare a crashed node dead
-- and revive it when it restarts. `suspicion` is phi for gossip and
-- milliseconds of silence for heartbeats.

-- Polls `c:status()` until node `at` sees node `peer` as `want`.
local function await_liveness(c, at, peer, want, timeout)
  local t0 = now()
  while now() - t0 < timeout do
    local s = c:status()[at]
    if s.up and s.liveness[peer] == want then return true end
    sleep(0.05)
  end
  return false
end

local function seen(c, at, peer)
  local s = c:status()[at]
  return string.format("node %d sees node %d as %s (suspicion %.1f)", at, peer, s.liveness[peer], s.suspicion[peer])
end

local histories = {}
for _, detector in ipairs({ "gossip", "heartbeat" }) do
  log("== failure detector:", detector)
  local c = cluster.start { nodes = 3, ["policy.failure_detector"] = detector }
  c:await_leader { timeout = 5 }
  local w = c:workload { clients = 2, keys = 5, mix = { put = 0.5, get = 0.5 }, rate = 50, duration = 30 }
  w:start()
  sleep(1)
  check.that(detector .. ": every node sees every other alive at the start",
    c:status()[1].liveness[2] == "alive" and c:status()[1].liveness[3] == "alive" and c:status()[3].liveness[1] == "alive",
    seen(c, 1, 3))

  -- Cut 1 <-> 3 both ways; 2 still talks to both.
  c:cut(1, 3)
  c:cut(3, 1)
  sleep(2.5)
  local view = seen(c, 1, 3)
  log(view)
  if detector == "gossip" then
    check.that("gossip: node 1 keeps node 3 alive through node 2", c:status()[1].liveness[3] == "alive", view)
  else
    check.that("heartbeat: node 1 no longer trusts node 3 it cannot hear", c:status()[1].liveness[3] ~= "alive", view)
  end
  c:heal()
  check.that(detector .. ": node 1 trusts node 3 again after the heal", await_liveness(c, 1, 3, "alive", 5), seen(c, 1, 3))

  -- A crash: everyone else must give node 3 up, then take it back.
  c:crash(3)
  local t0 = now()
  local dead = await_liveness(c, 1, 3, "dead", 10) and await_liveness(c, 2, 3, "dead", 10)
  log(detector, ": node 3 declared dead", string.format("%.2f s", now() - t0), "after its crash")
  check.that(detector .. ": nodes 1 and 2 declare the crashed node 3 dead", dead, seen(c, 1, 3))
  c:restart(3)
  check.that(detector .. ": node 3 is alive again after its restart", await_liveness(c, 1, 3, "alive", 5), seen(c, 1, 3))

  histories[#histories + 1] = w:stop()
  check.no_lost_writes(histories[#histories], c)
  c:stop()
end
for _, h in ipairs(histories) do check.linearizable(h) end
