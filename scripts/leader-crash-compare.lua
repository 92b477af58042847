-- leader-crash-compare.lua: one leader crash under a steady write load,
-- for comparing strategies side by side:
--
--   replab compare scripts/leader-crash-compare.lua --variant raft@config/raft.toml \
--       --variant async@config/primary-backup-async.toml --variant sync@config/primary-backup-sync.toml
--
-- Every replication link carries 10 ms of one-way delay (nodes in nearby
-- data centres), so that what a strategy waits for shows in its latency
-- and what it does not wait for is still in flight when the leader dies.
-- Besides the workload, two writers each put fresh keys one after another
-- (every key written once), so a lost acknowledged write cannot hide
-- behind a later write to the same key. The leader's network fails first
-- (a switch port or NIC dies) and 300 ms later the machine does (SIGKILL
-- semantics: its files stay); a successor takes over, and the old leader
-- restarts 3 s later and rejoins. A request without an answer within 1 s
-- is reported unknown.
--
-- Why the network fails first: a write a primary acknowledged has usually
-- already been sent to the backups, and a packet on the wire arrives even
-- if its sender dies, so a clean crash alone rarely catches async
-- replication out. What loses data in practice is replication lag: the
-- backups fall behind (a slow or broken link) and then the primary dies.
--
-- What the comparison table should show:
-- * raft: 0 acknowledged writes lost, linearizable. A put waits for a
--   majority: one link round trip, so its p50 is above 20 ms. Puts sent
--   in the 300 ms before the crash come back unknown.
-- * async (primary-backup): the lowest put p50 (the primary's own disk
--   only), and acknowledged writes lost: what the primary acknowledged
--   in its last 300 ms never reached a backup. When the old primary
--   rejoins it rolls back to the new primary's history, and
--   check.no_lost_writes names the writes that vanished.
-- * sync (primary-backup): 0 lost, but no write is acknowledged while the
--   old primary is down (it is a member every write waits for): writes in
--   that window come back unknown, and writes resume once it is back.
-- * quorum (primary-backup, if you add it): like raft.

local c = cluster.start { nodes = 3, node = { request_timeout_ms = 1000 } }
local first = c:await_leader { timeout = 10 }
for _, a in ipairs(c:nodes()) do
  for _, b in ipairs(c:others(a)) do c:link(a, b, { delay_ms = 10 }) end
end

local w = c:workload { clients = 8, keys = 16, mix = { put = 0.7, get = 0.3 }, rate = 400, duration = 60 }
w:start()
local writing = true
local writers = {}
for i = 1, 2 do
  writers[i] = spawn(function()
    local cl = c:client()
    local n = 0
    while writing do
      n = n + 1
      cl:put(string.format("once-%d-%d", i, n), "v")   -- errors (unknown, failed) are in the history
    end
    return n
  end)
end
sleep(2)
log("the leader's network fails:", first)
local faulted_at = now()
c:isolate(first)
sleep(0.3)
log("crashing leader", first)
c:crash(first)
local next = c:await_leader { timeout = 10, other_than = first }
log("node", next, "leads after the crash")
local member_down_from = now()
sleep(3)
local member_down_until = now()
c:heal()
c:restart(first)
sleep(2.5)
writing = false
for _, t in ipairs(writers) do t:join() end
w:stop()
local h = history(c)

-- Put latency before the fault (the steady state each strategy pays for),
-- and puts acknowledged while the old leader was down.
local put_ms, acked_while_down = {}, 0
for _, op in ipairs(h:ops()) do
  if op.kind == "put" and op.outcome == "ok" and op.complete then
    if op.complete < faulted_at then put_ms[#put_ms + 1] = (op.complete - op.invoke) * 1000 end
    if op.invoke >= member_down_from and op.complete <= member_down_until then
      acked_while_down = acked_while_down + 1
    end
  end
end
table.sort(put_ms)
local p50 = #put_ms > 0 and put_ms[math.max(1, math.ceil(#put_ms / 2))] or 0
log(string.format("put p50 before the fault %.2f ms over %d puts; %d puts acknowledged while a member was down",
  p50, #put_ms, acked_while_down))
report.note("put p50 ms before the fault", p50)
report.note("puts acknowledged while a member was down", acked_while_down)

check.linearizable(h)
check.no_lost_writes(h, c)
check.convergence(c)
