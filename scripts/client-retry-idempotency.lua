-- client-retry-idempotency.lua: increments, which are not idempotent,
-- across leader failover.
--
-- A client whose increment times out retries it with the same session
-- and sequence number, possibly at a new leader. The session table, part
-- of the replicated state, answers a retry of an applied increment with
-- its first result instead of adding again: every counter ends at exactly
-- the number of increments that took effect, and the history (where each
-- increment returns the new value) is linearizable.

local c = cluster.start { nodes = 3, wal = { fsync = "always" } }
c:await_leader { timeout = 5 }
local w = c:workload { clients = 6, keys = 4, mix = { incr = 0.7, get = 0.3 }, rate = 300, duration = 30 }
w:start()
for _ = 1, 2 do
  sleep(1)
  local old = c:leader()
  c:crash(old)
  c:await_leader { timeout = 5, other_than = old }
  sleep(0.5)
  c:restart(old)
end
sleep(1)
local h = w:stop()
check.linearizable(h)         -- an increment applied twice makes the values skip: not linearizable
check.no_lost_writes(h, c)
check.convergence(c)
report.note("retries answered from a session", c:stats().duplicate_writes)
