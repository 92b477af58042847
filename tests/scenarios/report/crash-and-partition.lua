-- TEST ONLY: a short run with two fault windows (a crash, then a
-- partition) and a leader change, for the report's structural test.
local c = cluster.start { nodes = 3 }
local leader = c:await_leader { timeout = 5 }
local w = c:workload { clients = 4, keys = 8, mix = { put = 0.5, get = 0.5 }, rate = 300, duration = 10 }
w:start()
sleep(0.4)
c:crash(leader)
local next_leader = c:await_leader { timeout = 5 }
sleep(0.3)
c:restart(leader)
sleep(0.2)
c:partition({ leader }, c:others(leader))
sleep(0.3)
c:heal()
sleep(0.2)
local h = w:stop()
check.linearizable(h)
check.no_lost_writes(h, c)
report.note("leader after the crash", next_leader)
