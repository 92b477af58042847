-- clock-skew.lua: a causally later write carries a smaller timestamp.
--
-- Node 1's wall clock runs 60 s ahead. While node 1 is cut off from the
-- others, a client writes v1 through it (W = 1: acknowledged by node 1
-- alone). Once v1 is acknowledged, a client writes v2 through node 2:
-- v2 comes after v1 in every sense a user cares about. But node 2 never
-- saw v1, so its hybrid clock stamps v2 with its own time, 60 s before
-- v1's stamp. Then the partition heals. Run it under both resolvers:
--
--   replab compare scripts/clock-skew.lua \
--       --variant lww@config/leaderless-lww.toml --variant vv@config/leaderless-vv.toml
--
-- What it should show:
-- * lww: v1's larger timestamp wins on every replica; v2, the later write,
--   is gone although its client was told "ok" (lost_updates > 0), and the
--   final read is v1.
-- * vv: neither write's context covers the other, so both are kept as
--   siblings: nothing is lost, and the final read shows v1 and v2.
-- (Under raft the question does not arise: one leader orders the writes.)

local c = cluster.start { nodes = 3 }
c:await_ready { timeout = 5 }
c:clock_skew(1, 60000)

local first = c:client { node = 1 }
local second = c:client { node = 2 }
c:partition({ 1 }, { 2, 3 })
local ok1, err1 = first:put("k", "v1")
log("v1 through node 1 (clock +60 s):", tostring(ok1), err1)
local ok2, err2 = second:put("k", "v2")
log("v2 through node 2, after v1 was acknowledged:", tostring(ok2), err2)
c:heal()
sleep(2)                                    -- anti-entropy spreads both

local final = second:get_all("k")
local values = final and final.values or {}
table.sort(values)
log("the key ends as", table.concat(values, ", "))
report.note("v1 acknowledged", ok1 == true)
report.note("v2 acknowledged", ok2 == true)
report.note("final values", table.concat(values, ","))

local h = history(c)
check.lost_updates(h, c)
check.siblings(h)
check.convergence(c)
