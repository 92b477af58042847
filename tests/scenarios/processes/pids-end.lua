-- Starts a process cluster, logs its pids and ends normally.
local c = cluster.start { nodes = 3, processes = true }
c:await_leader { timeout = 5 }
log("pids", c:pid(1), c:pid(2), c:pid(3))
