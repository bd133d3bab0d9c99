-- GET the top 10 of the all-time leaderboard. The same request every time,
-- so it is given as wrk.path: wrk then sends a request built once, as
-- redis-benchmark does for ZREVRANGE, instead of calling Lua per request.
dofile("bench/report.lua")
wrk.path = "/api/v2/gamify/leaderboard?limit=10"
