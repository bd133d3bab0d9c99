-- POST an event for a random user among GAMIFY_BENCH_USERS (default 100000).
dofile("bench/report.lua")
local users = tonumber(os.getenv("GAMIFY_BENCH_USERS") or "100000")
local categories = {"finance", "learning", "health", "productivity", "social"}
math.randomseed(os.time())
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local body = string.format(
    '{"user_id":"user_%d","category":"%s","action":"bench","value":%d.5,"metadata":{"source":"wrk"}}',
    math.random(users), categories[math.random(5)], math.random(9))
  return wrk.format(nil, "/api/v2/gamify/event", nil, body)
end
