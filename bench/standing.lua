-- GET the all-time rank of a random user among GAMIFY_BENCH_USERS (no
-- neighbours): the leaderboard's rank-of-user.
dofile("bench/report.lua")
local users = tonumber(os.getenv("GAMIFY_BENCH_USERS") or "1000000")
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/api/v2/gamify/leaderboard/user_" .. math.random(0, users - 1) .. "?k=0")
end
