-- GET the all-time rank of a random user among GAMIFY_BENCH_USERS (no
-- neighbours): the leaderboard's rank-of-user. The request is the user's
-- number between two fixed pieces, not wrk.format's table of headers per
-- request: the load tool's own cost stays close to redis-benchmark's
-- (which puts a random number into a command built once) on cores it
-- shares with the server.
dofile("bench/report.lua")
local users = tonumber(os.getenv("GAMIFY_BENCH_USERS") or "1000000")
math.randomseed(os.time())
local head = "GET /api/v2/gamify/leaderboard/user_"
local tail
init = function()
  local rest = ""
  for name, value in pairs(wrk.headers) do
    rest = rest .. name .. ": " .. value .. "\r\n"
  end
  tail = "?k=0 HTTP/1.1\r\n" .. rest .. "\r\n"
end
request = function()
  return head .. math.random(0, users - 1) .. tail
end
