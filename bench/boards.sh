#!/usr/bin/env bash
# Leaderboards at scale (issue #6), one run:
#
#   bench/boards.sh [USERS] [DURATION] [CONNECTIONS]   (defaults: 1000000, 10s, 64)
#
# 1. The in-process structures' memory per user per board and lookup time
#    (bench/rank_memory.rs, 4 boards).
# 2. A SQLite database with USERS users (one event each, bench/fill.rs);
#    `gamify serve` on it (start-up time: the boards are built then), and
#    wrk against the all-time board: rank of a random user
#    (GET /leaderboard/{user}?k=0) and the top 10.
#    The same again with GAMIFY_WORKERS=1 (one thread serving requests,
#    as Redis has one: the load tool gets the other core).
# 3. The bare axum endpoint of bench/ceiling.rs (GET, a built-in body, no
#    work), with the same wrk settings: what HTTP alone reaches here; also
#    with one worker thread.
# 4. The same on Redis (127.0.0.1:6379, a scratch key): a sorted set of
#    USERS members, redis-benchmark with ZREVRANK of a random member and
#    ZREVRANGE 0 9 WITHSCORES, same connection count.
# Prints a Markdown table with each row's ratio to Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${1:-1000000}
DURATION=${2:-10s}
CONNS=${3:-64}
ADDR=127.0.0.1:8102
KEY=gamify:bench:board
. bench/lib.sh
require_redis_bench
require_free $ADDR
echo "building release binaries..." >&2
cargo build --release --quiet --bin gamify --example bench_fill --example bench_rank_memory --example bench_ceiling
DATA=$(mktemp -d -p "$PWD" .bench-boards.XXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; redis-cli del $KEY >/dev/null; rm -rf "$DATA"; }
trap cleanup EXIT

echo "in-process structures (4 boards)..." >&2
MEMORY=$(target/release/examples/bench_rank_memory "$USERS" 4)

echo "filling $USERS users..." >&2
GAMIFY_LOG=warn target/release/examples/bench_fill "$DATA/gamify.db" "$USERS" "$USERS" >/dev/null
STARTED=$(date +%s%N)
GAMIFY_ADDR=$ADDR GAMIFY_DATA_DIR=$DATA GAMIFY_LOG=info target/release/gamify serve >"$DATA/server.log" 2>&1 &
PIDS+=($!)
wait_listening "$DATA/server.log"
START_MS=$(( ($(date +%s%N) - STARTED) / 1000000 ))
RSS_MIB=$(( $(awk '/VmRSS/ {print $2}' /proc/${PIDS[0]}/status) / 1024 ))
run rank "$USERS" bench/standing.lua "http://$ADDR"
run top10 "$USERS" bench/top10.lua "http://$ADDR"
kill "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true

echo "one worker thread:" >&2
: >"$DATA/server.log"
GAMIFY_WORKERS=1 GAMIFY_ADDR=$ADDR GAMIFY_DATA_DIR=$DATA GAMIFY_LOG=info target/release/gamify serve >"$DATA/server.log" 2>&1 &
PIDS+=($!)
wait_listening "$DATA/server.log"
run rank_1_worker "$USERS" bench/standing.lua "http://$ADDR"
run top10_1_worker "$USERS" bench/top10.lua "http://$ADDR"
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true

echo "bare axum (bench/ceiling.rs):" >&2
CEILING_ADDR=$ADDR target/release/examples/bench_ceiling >/dev/null &
PIDS+=($!)
sleep 0.5
run ceiling_get "$USERS" bench/get_balance.lua "http://$ADDR"
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
TOKIO_WORKER_THREADS=1 CEILING_ADDR=$ADDR target/release/examples/bench_ceiling >/dev/null &
PIDS+=($!)
sleep 0.5
run ceiling_get_1_worker "$USERS" bench/get_balance.lua "http://$ADDR"
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true

redis_baseline "$USERS" $KEY

echo
echo "| row | requests/s | p50 ms | p99 ms | vs Redis |"
echo "|---|---:|---:|---:|---:|"
awk '{ rps[$1]=$2; p50[$1]=$3; p99[$1]=$4; order[NR]=$1 }
     END {
       base["rank"]="redis_zrevrank"; base["top10"]="redis_zrevrange"
       base["rank_1_worker"]="redis_zrevrank"; base["top10_1_worker"]="redis_zrevrange"
       base["ceiling_get"]="redis_zrevrank"; base["ceiling_get_1_worker"]="redis_zrevrank"
       for (i = 1; i <= NR; i++) { n = order[i]
         ratio = (n in base) ? sprintf("%.2f×", rps[n] / rps[base[n]]) : ""
         printf "| %s | %d | %s | %s | %s |\n", n, rps[n], p50[n], p99[n], ratio } }' "$DATA/results"
echo
echo "$MEMORY"
echo "gamify start-up with $USERS users (boards built): ${START_MS} ms, resident ${RSS_MIB} MiB; $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ)"
