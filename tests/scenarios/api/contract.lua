-- The scenario API's contract, one check per promise (issue 11's list).
-- tests/scenarios/api.rs runs this and requires every check to pass.

local function fails_with(f, needle)
  local ok, err = pcall(f)
  return not ok and string.find(tostring(err), needle, 1, true) ~= nil, tostring(err)
end

local c = cluster.start { nodes = 3, kv = { session_expiry_ms = 2000 } }
local leader = c:await_leader { timeout = 5 }
local follower = c:others(leader)[1]

-- Bad node ids, overlapping groups and self-links are errors.
check.that("partition refuses overlapping sides", fails_with(function() c:partition({ 1, 2 }, { 2, 3 }) end, "on both sides"))
check.that("partition refuses non-members", fails_with(function() c:partition({ 1 }, { 9 }) end, "node 9 is not a member"))
check.that("cut refuses a self-link", fails_with(function() c:cut(2, 2) end, "itself"))
check.that("cut refuses non-members", fails_with(function() c:cut(1, 7) end, "node 7 is not a member"))
check.that("link refuses non-members", fails_with(function() c:link(8, 1, { drop = 0.5 }) end, "node 8 is not a member"))
check.that("transfer_leader refuses non-members", fails_with(function() c:transfer_leader(42) end, "node 42 is not a member"))
check.that("resume refuses a node that is not paused", fails_with(function() c:resume(leader) end, "not paused"))

-- Reads at one node.
local cl = c:client()
cl:put("k", "v1")
check.that("get at a follower without stale fails: it is not the leader",
  select(2, cl:get("k", { node = follower })) ~= nil)
check.that("get at the leader with node is linearizable and answers", cl:get("k", { node = leader }) == "v1")
check.that("a stale get must name its node", fails_with(function() cl:get("k", { stale = true }) end, "node = id"))

-- h:ops(): every operation with its fields.
local ops = history(c):ops()
local first = ops[1]
check.that("h:ops() lists the operations (the put and both reads)", #ops == 3, #ops .. " ops")
check.that("an op has kind, key, value, outcome, times and client",
  first.kind == "put" and first.key == "k" and first.value == "v1" and first.outcome == "ok"
  and first.invoke > 0 and first.complete >= first.invoke and first.client == cl:id())

-- A leader transfer reports what became of it.
check.that("a transfer to a follower succeeds", c:transfer_leader(follower) == true)
leader = c:await_leader { timeout = 5 }
local target = c:others(leader)[1]
c:isolate(target)
check.that("a transfer to an isolated node is abandoned, and says so", c:transfer_leader(target) == false)
c:heal()

-- Clock skew reaches session expiry; an expired session registers anew.
leader = c:await_leader { timeout = 5 }
local s1 = c:client()
s1:put("a", "1")
c:clock_skew(leader, 10000)       -- the leader's clock jumps 10 s: every session looks idle
local ok, err = s1:put("a", "2")
check.that("a skewed leader clock expires the session", ok == nil and string.find(tostring(err), "expired", 1, true) ~= nil, tostring(err))
check.that("an expired session registers again", s1:put("a", "3") == true)
c:clock_skew(leader, 0)

-- max_ops ends the workload early, and run() returns then.
local t0 = now()
local h = c:workload { clients = 2, keys = 4, max_ops = 20, duration = 30 }:run()
check.that("run() returns once max_ops operations were issued", h:len() == 20 and now() - t0 < 10, h:len() .. " ops in " .. (now() - t0) .. " s")

-- c:stats() shows what the nodes count.
local s = c:stats()
check.that("stats count proposals and entries per proposal", s.proposals > 0 and s.entries_per_proposal >= 1)
check.that("stats count fdatasyncs and entries per fdatasync", s.fdatasyncs > 0 and s.entries_per_fdatasync > 0)
check.that("stats count transfers started and abandoned", s.transfers_started >= 2 and s.transfers_abandoned >= 1,
  s.transfers_started .. " started, " .. s.transfers_abandoned .. " abandoned")
check.that("stats count elections won, apart from leader view changes", s.elections >= 2 and s.leader_view_changes >= s.elections)

-- A cluster's history holds its own clients' operations only.
local other = cluster.start { nodes = 1 }
other:await_leader { timeout = 5 }
other:client():put("x", "y")
check.that("history(c) is scoped to its cluster", history(other):len() == 1 and history(c):len() == history():len() - 1)

-- c:stop() keeps the counters in the run's totals.
local before = c:stats().elections
c:stop()
check.that("the counters survive c:stop()", c:stats().elections == before and before > 0)
