-- GET the top 10 of the all-time leaderboard.
dofile("bench/report.lua")
request = function()
  return wrk.format("GET", "/api/v2/gamify/leaderboard?limit=10")
end
