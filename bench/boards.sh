#!/usr/bin/env bash
# Leaderboards at scale (issue #6), one run:
#
#   bench/boards.sh [USERS] [DURATION] [CONNECTIONS] [ROUNDS]
#                   (defaults: 1000000, 10s, 64, 3)
#
# 1. The in-process structures' memory per user per board and lookup time
#    (bench/rank_memory.rs, 4 boards).
# 2. A SQLite database with USERS users (one event each, bench/fill.rs);
#    `gamify serve` on it (start-up time: the boards are built then), and
#    wrk against the all-time board: rank of a random user
#    (GET /leaderboard/{user}?k=0) and the top 10.
#    The same again with GAMIFY_WORKERS=1 (one thread serving requests,
#    as Redis has one: the load tool gets the other core), on a copy.
# 3. The bare axum endpoint of bench/ceiling.rs (GET, a built-in body, no
#    work), with the same wrk settings: what HTTP alone reaches here; also
#    with one worker thread.
# 4. The same on Redis (127.0.0.1:6379, a scratch key): a sorted set of
#    USERS members, redis-benchmark with ZREVRANK of a random member and
#    ZREVRANGE 0 9 WITHSCORES, same connection count.
# Every server is started first; then ROUNDS rounds each measure every row
# once, Redis's rows among them, so that each round's ratios compare
# figures taken within a minute or two of each other (this machine's speed
# drifts by tens of percent over minutes). Prints a Markdown table: each
# row's median over the rounds, its worst p99, and the median and range of
# its ratios to the same round's Redis row.
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${1:-1000000}
DURATION=${2:-10s}
CONNS=${3:-64}
ROUNDS=${4:-3}
ADDR=127.0.0.1:8102
ADDR_1=127.0.0.1:8103
CEILING=127.0.0.1:8104
CEILING_1=127.0.0.1:8105
KEY=gamify:bench:board
. bench/lib.sh
require_redis_bench
require_free $ADDR $ADDR_1 $CEILING $CEILING_1
echo "building release binaries..." >&2
cargo build --release --quiet --bin gamify --example bench_fill --example bench_rank_memory --example bench_ceiling
DATA=$(mktemp -d -p "$PWD" .bench-boards.XXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; redis-cli del $KEY >/dev/null; rm -rf "$DATA"; }
trap cleanup EXIT

echo "in-process structures (4 boards)..." >&2
MEMORY=$(target/release/examples/bench_rank_memory "$USERS" 4)

echo "filling $USERS users..." >&2
mkdir "$DATA/one" "$DATA/two"
GAMIFY_LOG=warn target/release/examples/bench_fill "$DATA/two/gamify.db" "$USERS" "$USERS" >/dev/null
cp "$DATA"/two/gamify.db* "$DATA/one/"
rm -f "$DATA"/one/*.lock
STARTED=$(date +%s%N)
GAMIFY_ADDR=$ADDR GAMIFY_DATA_DIR=$DATA/two GAMIFY_LOG=info target/release/gamify serve >"$DATA/two/server.log" 2>&1 &
PIDS+=($!)
wait_listening "$DATA/two/server.log"
START_MS=$(( ($(date +%s%N) - STARTED) / 1000000 ))
RSS_MIB=$(( $(awk '/VmRSS/ {print $2}' /proc/${PIDS[0]}/status) / 1024 ))
echo "one worker thread, on a copy:" >&2
GAMIFY_WORKERS=1 GAMIFY_ADDR=$ADDR_1 GAMIFY_DATA_DIR=$DATA/one GAMIFY_LOG=info target/release/gamify serve >"$DATA/one/server.log" 2>&1 &
PIDS+=($!)
wait_listening "$DATA/one/server.log"
echo "bare axum (bench/ceiling.rs), with two worker threads and with one:" >&2
CEILING_ADDR=$CEILING target/release/examples/bench_ceiling >/dev/null &
PIDS+=($!)
TOKIO_WORKER_THREADS=1 CEILING_ADDR=$CEILING_1 target/release/examples/bench_ceiling >/dev/null &
PIDS+=($!)
sleep 0.5
redis_fill "$USERS" $KEY

for round in $(seq "$ROUNDS"); do
  echo "round $round of $ROUNDS:" >&2
  : >"$DATA/results"
  run rank "$USERS" bench/standing.lua "http://$ADDR"
  run top10 "$USERS" bench/top10.lua "http://$ADDR"
  redis_measure "$USERS" $KEY
  run rank_1_worker "$USERS" bench/standing.lua "http://$ADDR_1"
  run top10_1_worker "$USERS" bench/top10.lua "http://$ADDR_1"
  run ceiling_get "$USERS" bench/get_balance.lua "http://$CEILING"
  run ceiling_get_1_worker "$USERS" bench/get_balance.lua "http://$CEILING_1"
  sed "s/\$/ $round/" "$DATA/results" >>"$DATA/rounds"
done

echo
echo "| row | requests/s (median of $ROUNDS) | p50 ms (median) | p99 ms (worst) | vs Redis (median) | vs Redis (each round) |"
echo "|---|---:|---:|---:|---:|---|"
awk '
  function median(list,   v, n, i, j, t) {
    n = split(list, v, " ")
    for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j-1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j-1]; v[j-1] = t }
    return (n % 2) ? v[(n+1)/2] : (v[n/2] + v[n/2+1]) / 2
  }
  { name = $1; round = $5
    if (!(name in seen)) { seen[name] = 1; order[++rows] = name }
    rps[name, round] = $2; rpss[name] = rpss[name] " " $2; p50s[name] = p50s[name] " " $3
    if ($4 + 0 > worst[name] + 0) worst[name] = $4
    if (round + 0 > rounds) rounds = round + 0 }
  END {
    base["rank"] = "redis_zrevrank"; base["top10"] = "redis_zrevrange"
    base["rank_1_worker"] = "redis_zrevrank"; base["top10_1_worker"] = "redis_zrevrange"
    base["ceiling_get"] = "redis_zrevrank"; base["ceiling_get_1_worker"] = "redis_zrevrank"
    for (i = 1; i <= rows; i++) { n = order[i]; ratios = ""; each = ""
      if (n in base) for (r = 1; r <= rounds; r++) {
        x = rps[n, r] / rps[base[n], r]; ratios = ratios " " x
        each = each (each == "" ? "" : ", ") sprintf("%.2f×", x) }
      printf "| %s | %d | %.3f | %s | %s | %s |\n", n, median(rpss[n]), median(p50s[n]), worst[n],
        (n in base) ? sprintf("%.2f×", median(ratios)) : "", each } }' "$DATA/rounds"
echo
echo "$MEMORY"
echo "gamify start-up with $USERS users (boards built): ${START_MS} ms, resident ${RSS_MIB} MiB; $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ)"
