-- power-loss.lua: the whole cluster loses power at once.
--
-- An acknowledged write is one the leader told the client is stored. With
-- wal.fsync = "always" (or "batch"), it was fdatasynced on a majority
-- before that, so it survives. With "never" it was only in the page cache,
-- and a power loss takes the page cache with it: the writes are gone,
-- although every client was told they were stored. Compare:
--
--   replab compare scripts/power-loss.lua \
--       --variant always:wal.fsync=always --variant never:wal.fsync=never
--
-- should show no_lost_writes passing with 0 lost under "always", and
-- failing with acknowledged writes lost under "never".

local c = cluster.start { nodes = 3 }
c:await_leader { timeout = 5 }

local w = c:workload { clients = 4, keys = 16, mix = { put = 1.0 }, rate = 300, duration = 2 }
local h = w:run()
log("acknowledged puts:", h:counts().ok)

for _, id in ipairs(c:nodes()) do
  c:crash(id, { power_loss = true })     -- unsynced writes are lost too
end
for _, id in ipairs(c:nodes()) do
  c:restart(id)
end
c:await_leader { timeout = 10 }

check.no_lost_writes(h, c)
check.convergence(c)
