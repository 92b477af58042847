-- concurrent-writes.lua: the same keys written on both sides of a partition.
--
-- Node 1 is cut off from nodes 2 and 3. A client bound to node 1 and a
-- client that knows only nodes 2 and 3 write the same ten keys at the same
-- time; then the partition heals, every key is read, and each is written
-- once more with the context of that read. Run it under each strategy:
--
--   replab compare scripts/concurrent-writes.lua --variant raft@config/raft.toml \
--       --variant lww@config/leaderless-lww.toml --variant vv@config/leaderless-vv.toml
--
-- What the table should show:
-- * raft: the minority side (node 1) commits nothing, so its writes fail
--   or stay unknown; the majority's are acknowledged; nothing is lost and
--   the history is linearizable.
-- * lww: both sides' writes are acknowledged; after the heal, of each pair
--   the later timestamp wins everywhere and the other is gone although its
--   client was told "ok": lost_updates > 0.
-- * vv: both sides' writes are acknowledged and both are kept: each
--   contested key reads as 2 siblings until the write with the read's
--   context resolves them. lost_updates = 0; linearizability fails (a read
--   of two values is no register's), which is the finding, not a crash.

local KEYS = 10
local c = cluster.start { nodes = 3 }
c:await_ready { timeout = 5 }
local left = c:client { node = 1 }
local right = c:client { nodes = { 2, 3 } }

c:partition({ 1 }, { 2, 3 })
local acknowledged = { left = 0, right = 0 }
local function writer(side, client)
  return spawn(function()
    for i = 1, KEYS do
      if client:put("k" .. i, side .. "-" .. i) == true then acknowledged[side] = acknowledged[side] + 1 end
    end
  end)
end
local l, r = writer("left", left), writer("right", right)
l:join(); r:join()
log("acknowledged: left", acknowledged.left, "right", acknowledged.right)
c:heal()
c:await_ready { timeout = 10 }
sleep(2)                                 -- catch-up (raft), anti-entropy (leaderless)

-- Read every key, then resolve it with a write that carries the context.
local most, resolved = 0, 0
for i = 1, KEYS do
  local all = right:get_all("k" .. i)
  if all then
    most = math.max(most, #all.values)
    if right:put("k" .. i, "resolved-" .. i, { context = all.context }) == true then resolved = resolved + 1 end
  end
end
local after = 0
for i = 1, KEYS do
  local all = right:get_all("k" .. i)
  if all then after = math.max(after, #all.values) end
end
log("siblings per key after the heal: at most", most, "; after resolving:", after)

report.note("left acknowledged", acknowledged.left)
report.note("right acknowledged", acknowledged.right)
report.note("siblings after heal", most)
report.note("siblings after resolve", after)
report.note("resolved", resolved)

local h = history(c)
check.linearizable(h)
check.no_lost_writes(h, c)
check.lost_updates(h, c)
check.siblings(h)
check.convergence(c)
