-- minority-pinned-client.lua: a client stuck on the minority side.
--
-- The leader is cut off from the other two nodes. A client bound to it
-- (c:client { node = id }) never follows a redirect nor tries another
-- node, so it keeps writing to the old leader. Under Raft those writes
-- must fail or stay unknown: the minority cannot commit anything. The
-- majority elects a new leader and takes writes from everyone else.

local c = cluster.start { nodes = 3 }
local old = c:await_leader { timeout = 5 }
local minority = c:client { node = old }
local w = c:workload { clients = 4, keys = 8, mix = { put = 0.5, get = 0.5 }, rate = 200, duration = 30 }
w:start()
sleep(0.5)

c:partition({ old }, c:others(old))
for i = 1, 5 do
  local ok, err = minority:put("minority-" .. i, "v" .. i)
  log("minority write", i, tostring(ok), err)
end
local new = c:await_leader { timeout = 5, other_than = old }
log("the majority elected node", new)
c:heal()
sleep(1)
local h = w:stop()

local acknowledged = 0
for _, op in ipairs(history(c):ops()) do
  if op.client == minority:id() and op.kind == "put" and op.outcome == "ok" then acknowledged = acknowledged + 1 end
end
check.that("no write on the minority side was acknowledged", acknowledged == 0, acknowledged .. " acknowledged")
check.linearizable(history(c))
check.no_lost_writes(history(c), c)
check.convergence(c)
