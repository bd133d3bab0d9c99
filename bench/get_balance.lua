-- GET the balance of a random user among GAMIFY_BENCH_USERS (default 100000).
dofile("bench/report.lua")
local users = tonumber(os.getenv("GAMIFY_BENCH_USERS") or "100000")
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/api/v2/gamify/balance/user_" .. math.random(users))
end
