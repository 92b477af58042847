-- clock_skew reaches a node process: with node 1's clock a minute ahead,
-- node 1 stamps v1 later than node 2 stamps v2 (written after v1), and
-- last-writer-wins keeps v1 (scripts/clock-skew.lua, on processes).
local c = cluster.start { nodes = 3, processes = true }
c:await_ready { timeout = 5 }
c:clock_skew(1, 60000)
local first = c:client { node = 1 }
local second = c:client { node = 2 }
c:partition({ 1 }, { 2, 3 })
assert(first:put("k", "v1"))
assert(second:put("k", "v2"))
c:heal()
sleep(1.5)
local final = second:get_all("k")
table.sort(final.values)
log("final", table.concat(final.values, ","))
report.note("final values", table.concat(final.values, ","))
