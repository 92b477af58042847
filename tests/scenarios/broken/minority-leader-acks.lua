-- TEST ONLY, run with raft.bug = "commit_without_quorum": a leader cut off
-- in a minority keeps acknowledging writes it could never commit. After
-- the heal the majority's log wins and those acknowledged writes vanish.
-- check.no_lost_writes must catch it. (With a correct Raft the same writes
-- time out as "unknown" and the client moves on to the new leader.)
local c = cluster.start { nodes = 5, raft = { check_quorum = false }, node = { request_timeout_ms = 1000 } }
local old = c:await_leader { timeout = 5 }
local others = c:others(old)
local cl = c:client()
cl:put("warm-up", "finds the leader")
c:partition({ old, others[1] }, { others[2], others[3], others[4] })
for i = 1, 10 do
  -- Keys nobody else writes: if these acknowledged writes vanish, nothing
  -- overwrote them.
  local ok, err = cl:put("minority-" .. i, "v" .. i)
  log("put minority-" .. i, ok, err)
end
c:await_leader { timeout = 5, other_than = old }
c:heal()
sleep(1.5)
check.no_lost_writes(history(), c)
check.linearizable(history())
