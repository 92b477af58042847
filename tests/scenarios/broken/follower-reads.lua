-- Reads served by a follower's own replica (no ReadIndex) are not
-- linearizable once that follower falls behind: a partitioned follower
-- returns a value the leader has already overwritten.
local c = cluster.start { nodes = 3 }
local leader = c:await_leader { timeout = 5 }
local f = c:others(leader)[1]
local cl = c:client()
cl:put("x", "old")
sleep(0.3)                                   -- let the follower apply it
c:isolate(f)
cl:put("x", "new")                           -- acknowledged by the majority
local v = cl:get("x", { stale = true, node = f })
log("the isolated follower says x =", v)
c:heal()
-- The history holds put old, put new (acknowledged), then a read of "old".
check.linearizable(history())
