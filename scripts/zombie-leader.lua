-- zombie-leader.lua: the chapter's "leader with a GC pause".
--
-- The leader freezes for longer than the election timeout. The others
-- elect a new leader and go on. Meanwhile a client bound to the old leader
-- sends it a write and a read, which wait in its queue. It was cut off
-- from the others as it froze, so nothing tells it about the new term when
-- it resumes: it still
-- believes it leads, and works through the stale requests as leader. It
-- must acknowledge nothing: the write cannot commit (no quorum acknowledges
-- it), the read cannot confirm its leadership with a quorum, and within an
-- election timeout CheckQuorum makes it step down. Then the network heals.

local c = cluster.start { nodes = 3 }
local old = c:await_leader { timeout = 5 }
local w = c:workload { clients = 4, keys = 8, mix = { put = 0.5, get = 0.5 }, rate = 200, duration = 30 }
w:start()
sleep(0.5)

local pinned = c:client { node = old }   -- never redirected elsewhere
c:pause(old)
c:isolate(old)
local new = c:await_leader { timeout = 5, other_than = old }
log("node", old, "is paused; node", new, "leads now")

local write = spawn(function() return pinned:put("zombie", "stale") end)
local read = spawn(function() return pinned:get("k1", { node = old }) end)
sleep(1)
c:resume(old)
local wrote, werr = write:join()
local got, rerr = read:join()
log("the zombie's write:", tostring(wrote), werr, "its read:", tostring(got), rerr)
local s = c:status()[old]
log("node", old, "is now", s.role, "in term", s.term)
c:heal()
sleep(1)
local h = w:stop()
check.that("the resumed old leader acknowledged no write", wrote ~= true, tostring(werr))
check.that("the resumed old leader served no read", rerr ~= nil, "it answered " .. tostring(got))
check.that("the old leader stepped down", s.up and s.role ~= "leader" and s.term > 0, "role " .. tostring(s.role))
check.linearizable(history(c))
check.no_lost_writes(h, c)
check.convergence(c)
