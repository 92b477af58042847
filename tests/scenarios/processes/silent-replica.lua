-- Starts a process cluster, writes, logs its pids and waits while the test
-- freezes node 2 behind the lab's back (SIGSTOP from outside: the lab
-- still believes it runs). Node 2 then answers nothing, so convergence
-- cannot be judged: the check must be undecided, never a pass over nodes
-- 1 and 3 alone.
local c = cluster.start { nodes = 3, processes = true }
c:await_leader { timeout = 5 }
local cl = c:client()
for i = 1, 20 do cl:put("k" .. i, "v" .. i) end
log("pids", c:pid(1), c:pid(2), c:pid(3))
sleep(2)
check.convergence(c, { timeout = 1 })
