-- quorum-sweep.lua: how often a read misses the latest write, for
-- (R, W) in {(1,1), (1,2), (2,2), (1,3)} at N = 3.
--
-- Each setting runs the same read-modify-write workload on a fresh
-- leaderless cluster (version vectors, so clock ties play no part) whose
-- replication links are slowed to 2-20 ms. A read is stale if it returned
-- only values that an acknowledged write had already replaced before the
-- read began (check.stale_reads). Next to the measured fraction the script
-- prints the PBS closed form (Bailis et al., "Probabilistically Bounded
-- Staleness", 2012): the chance that a read quorum of R replicas, chosen
-- at random, misses all W replicas of the latest write at the instant that
-- write is acknowledged:
--
--     p = C(N - W, R) / C(N, R)       (2/3, 1/3, 0 and 0 here)
--
-- What it should show: no stale read when R + W > N ((2,2) and (1,3));
-- some when R + W <= N, fewest at (1,2), most at (1,1); and fractions
-- well below the closed form. The closed form is a worst case at the
-- instant of the acknowledgement. Here a read usually starts after the
-- write had time to reach more replicas (it goes to all N, only the
-- acknowledgement waits for W), the coordinating node's own replica
-- answers first rather than a random one, and read repair and
-- anti-entropy keep narrowing the window: staleness is a matter of time
-- (PBS's t-visibility), not only of quorum sizes.

local N = 3
local settings = { { 1, 1 }, { 1, 2 }, { 2, 2 }, { 1, 3 } }

local function choose(n, k)
  if k < 0 or k > n then return 0 end
  local r = 1
  for i = 1, k do r = r * (n - k + i) / i end
  return r
end

local rows = {}
for _, rw in ipairs(settings) do
  local R, W = rw[1], rw[2]
  local c = cluster.start {
    nodes = N,
    policy = { replication = "leaderless", conflict_resolver = "version-vector" },
    leaderless = { replicas = N, read_quorum = R, write_quorum = W },
  }
  c:await_ready { timeout = 5 }
  for _, a in ipairs(c:nodes()) do
    for _, b in ipairs(c:others(a)) do c:link(a, b, { delay_uniform_ms = { 2, 20 } }) end
  end
  local h = c:workload { clients = 6, keys = 3, mix = { update = 0.5, get = 0.5 }, rate = 300, duration = 3, spread = true }:run()
  local reads = 0
  for _, op in ipairs(h:ops()) do
    if op.kind == "get" and op.outcome == "ok" then reads = reads + 1 end
  end
  local stale = check.stale_reads(h, { max = reads })   -- a measurement: never fails
  local fraction = reads > 0 and stale / reads or 0
  local pbs = choose(N - W, R) / choose(N, R)
  rows[#rows + 1] = string.format("R=%d W=%d  %s  reads %5d  stale %4d  fraction %.4f  closed form %.3f",
    R, W, R + W > N and "overlap   " or "no overlap", reads, stale, fraction, pbs)
  report.note(string.format("stale fraction R=%d W=%d", R, W), fraction)
  report.note(string.format("closed form R=%d W=%d", R, W), pbs)
  if R + W > N then
    check.that(string.format("R=%d W=%d: overlapping quorums read nothing stale", R, W), stale == 0,
      stale .. " stale of " .. reads)
  end
  c:stop()
end
for _, row in ipairs(rows) do log(row) end
