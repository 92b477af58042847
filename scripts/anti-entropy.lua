-- anti-entropy.lua: what anti-entropy costs, and how fast it repairs a
-- replica that missed writes, with no client reading anything.
--
-- A leaderless cluster (N = 3, W = 1, R = 1, version vectors) with read
-- repair off, so anti-entropy is the only way replicas converge. For each
-- anti-entropy interval:
--
--   1. Quiet cost: 200 keys written and converged, then 3 s in which
--      nothing changes. Every round is one digest message (one varint per
--      bucket) and nothing else.
--   2. Repair: node 3 is cut off while 500 new keys are written (each
--      reaches nodes 1 and 2 only), then the partition heals. check.convergence waits until
--      every owner of every key holds the same register; the script
--      reports how long that took and what anti-entropy sent meanwhile.
--
-- What it should show: a quiet round costs a few hundred bytes, so the
-- quiet cost grows with the rate of rounds (10x the rounds at 100 ms as at
-- 1000 ms); repair needs about one round per peer pair that differs, so it
-- takes on the order of the interval, and carries roughly the missing
-- registers once (the bytes of the repair phase are dominated by the 500
-- registers, not by digests). With anti-entropy off (interval 0) and no
-- reads, node 3 would never catch up: check.convergence would fail.

local function policy_stats(c)
  local p = c:stats().policy
  return {
    rounds = p.anti_entropy_rounds or 0,
    messages = p.anti_entropy_messages or 0,
    bytes = p.anti_entropy_bytes or 0,
    repaired = p.anti_entropy_keys_repaired or 0,
  }
end

local function delta(a, b)
  return {
    rounds = b.rounds - a.rounds,
    messages = b.messages - a.messages,
    bytes = b.bytes - a.bytes,
    repaired = b.repaired - a.repaired,
  }
end

for _, interval_ms in ipairs({ 100, 1000 }) do
  local c = cluster.start {
    nodes = 3,
    policy = { replication = "leaderless", conflict_resolver = "version-vector" },
    leaderless = {
      replicas = 3, write_quorum = 1, read_quorum = 1,
      read_repair = false, anti_entropy_interval_ms = interval_ms,
    },
  }
  c:await_ready { timeout = 5 }
  local cl = c:client { node = 1 }
  for i = 1, 200 do cl:put("k" .. i, "v" .. i) end
  check.convergence(c, { timeout = 30 })

  local quiet_s = 3
  local before = policy_stats(c)
  sleep(quiet_s)
  local quiet = delta(before, policy_stats(c))
  check.that(string.format("interval %d ms: a quiet cluster repairs nothing", interval_ms), quiet.repaired == 0,
    quiet.repaired .. " keys repaired")

  -- Cut off rather than crashed: a crashed node's peers queue their
  -- messages for it (up to each link's bound) and hand them over when it
  -- reconnects, so it would miss nothing. A partition drops them.
  c:isolate(3)
  for i = 1, 500 do cl:put("m" .. i, "x" .. i) end
  -- The baseline comes before the heal: a round can reach node 3 the
  -- moment it is healed, and its keys must count as repaired.
  before = policy_stats(c)
  local t0 = now()
  c:heal()
  local converged = check.convergence(c, { timeout = 60 })
  local repair_s = now() - t0
  local repair = delta(before, policy_stats(c))
  check.that(string.format("interval %d ms: anti-entropy brought over the 500 keys node 3 missed", interval_ms),
    repair.repaired >= 500, repair.repaired .. " keys repaired")

  log(string.format(
    "interval %4d ms | quiet: %5.1f rounds/s %6.0f B/s %4.0f B/round | repair of 500 keys: %5.2f s, %3d messages, %7d B, %d keys repaired%s",
    interval_ms, quiet.rounds / quiet_s, quiet.bytes / quiet_s, quiet.rounds > 0 and quiet.bytes / quiet.rounds or 0,
    repair_s, repair.messages, repair.bytes, repair.repaired, converged and "" or " (NOT converged)"))
  report.note(string.format("quiet bytes per second, interval %d ms", interval_ms), quiet.bytes / quiet_s)
  report.note(string.format("quiet bytes per round, interval %d ms", interval_ms),
    quiet.rounds > 0 and quiet.bytes / quiet.rounds or 0)
  report.note(string.format("repair seconds, interval %d ms", interval_ms), repair_s)
  report.note(string.format("repair bytes, interval %d ms", interval_ms), repair.bytes)
  c:stop()
end
