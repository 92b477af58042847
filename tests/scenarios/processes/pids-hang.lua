-- Starts a process cluster (one node paused), logs its pids and waits
-- forever: ended by --timeout, Ctrl-C or a kill.
local c = cluster.start { nodes = 3, processes = true }
c:await_leader { timeout = 5 }
c:pause(3)                                    -- a stopped process must die too
log("pids", c:pid(1), c:pid(2), c:pid(3))
while true do sleep(1) end
