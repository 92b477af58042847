-- snapshot-catch-up.lua: a follower that was down while the log was
-- compacted can no longer be sent the entries it missed (they are gone,
-- below the low watermark). The leader sends it a snapshot instead; after
-- installing it the follower continues from the log.

local c = cluster.start { nodes = 3, raft = { snapshot_threshold_entries = 200 } }
local leader = c:await_leader { timeout = 5 }
local lagging = c:others(leader)[1]
c:crash(lagging)

local w = c:workload { clients = 8, keys = 32, mix = { put = 0.8, get = 0.2 }, duration = 30, max_ops = 3000 }
w:start()
sleep(2.5)
local first = c:status()[leader].first
check.that("the leader compacted its log", first > 1, "log now starts at " .. first)

c:restart(lagging)
sleep(1.5)
local h = w:stop()
sleep(0.5)
local s = c:status()[lagging]
check.that("the lagging follower installed a snapshot", s.snapshots_installed >= 1,
  s.snapshots_installed .. " snapshots installed")
check.linearizable(h)
check.no_lost_writes(h, c)
check.convergence(c)
