-- TEST ONLY, run with raft.bug = "read_without_read_index": a deposed
-- leader, cut off but still believing it leads, answers a read from its
-- own stale state without confirming leadership with a quorum.
-- check.linearizable must catch it. (With ReadIndex the read cannot be
-- confirmed there; the client moves on to the new leader.)
local c = cluster.start { nodes = 3, raft = { check_quorum = false }, node = { request_timeout_ms = 1000 } }
local old = c:await_leader { timeout = 5 }
local reader = c:client()
reader:put("x", "before")               -- the reader now talks to the old leader
c:isolate(old)
c:await_leader { timeout = 5, other_than = old }
local writer = c:client()
local ok, err = writer:put("x", "after") -- acknowledged by the new leader
log("writer put x=after:", ok, err)
local v, rerr = reader:get("x")
log("reader got x =", v, rerr)
c:heal()
check.linearizable(history())
