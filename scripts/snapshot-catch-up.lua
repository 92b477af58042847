-- snapshot-catch-up.lua: a follower that was down while the log was
-- compacted can no longer be sent the entries it missed (they are gone,
-- below the low watermark). The leader sends it a snapshot instead; after
-- installing it the follower continues from the log.

local c = cluster.start { nodes = 3, raft = { snapshot_threshold_entries = 200 } }
local leader = c:await_leader { timeout = 5 }
local lagging = c:others(leader)[1]
c:crash(lagging)

-- Waits for a condition instead of sleeping a fixed time: on a loaded
-- machine the workload may take longer to fill the log past the
-- threshold, and the restarted node longer to reconnect.
local function wait_for(timeout_s, condition)
  local deadline = now() + timeout_s
  while not condition() and now() < deadline do sleep(0.1) end
end

local w = c:workload { clients = 8, keys = 32, mix = { put = 0.8, get = 0.2 }, duration = 30, max_ops = 3000 }
w:start()
wait_for(20, function() return c:status()[leader].first > 1 end)
local first = c:status()[leader].first
check.that("the leader compacted its log", first > 1, "log now starts at " .. first)

c:restart(lagging)
wait_for(20, function() return c:status()[lagging].snapshots_installed >= 1 end)
local h = w:stop()
local s = c:status()[lagging]
check.that("the lagging follower installed a snapshot", s.snapshots_installed >= 1,
  s.snapshots_installed .. " snapshots installed")
check.linearizable(h)
check.no_lost_writes(h, c)
check.convergence(c)
