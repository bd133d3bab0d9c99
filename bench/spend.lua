-- POST a spend of 1 point for a random one of GAMIFY_BENCH_USERS hot users
-- (hot_1 … hot_N), each given a large balance beforehand by bench/spend.sh.
dofile("bench/report.lua")
local users = tonumber(os.getenv("GAMIFY_BENCH_USERS") or "10")
math.randomseed(os.time())
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local body = string.format('{"user_id":"hot_%d","points":1.0,"reason":"bench"}', math.random(users))
  return wrk.format(nil, "/api/v2/gamify/spend", nil, body)
end
