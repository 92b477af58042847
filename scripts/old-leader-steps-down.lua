-- old-leader-steps-down.lua: a leader cut off from everyone steps down,
-- and on heal it adopts the higher term of the new leader.
--
-- This is the generation clock at work: the new leader's term is higher,
-- so the old leader's messages are recognised as stale and it follows.

local c = cluster.start { nodes = 3, raft = { check_quorum = true } }
local old = c:await_leader { timeout = 5 }
local old_term = c:status()[old].term

local cl = c:client()
cl:put("before", "partition")
c:isolate(old)
local new = c:await_leader { timeout = 5, other_than = old }
sleep(1)   -- longer than an election timeout: CheckQuorum makes the old leader step down
local alone = c:status()[old]
check.that("the isolated leader stepped down", alone.role ~= "leader", "its role is " .. alone.role)
cl:put("during", "partition")

c:heal()
sleep(1)
local back = c:status()[old]
check.that("on heal the old leader follows the new one", back.role == "follower" and back.leader == new,
  back.role .. " following " .. tostring(back.leader))
check.that("and adopted the higher term", back.term > old_term,
  "term " .. old_term .. " -> " .. back.term)
local v = cl:get("during")
check.that("the write made during the partition is there", v == "partition")
check.convergence(c)
