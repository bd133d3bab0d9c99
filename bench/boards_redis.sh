#!/usr/bin/env bash
# Leaderboards on PostgreSQL with and without Redis (issue #6), one run:
#
#   bench/boards_redis.sh [USERS] [DURATION] [CONNECTIONS]   (defaults: 1000000, 10s, 64)
#
# 1. A PostgreSQL schema with USERS users, one event each (bench/fill.rs).
# 2. `gamify serve` with REDIS_URL on it: start-up (the boards are built in
#    Redis then), wrk for the rank of a random user on the all-time board
#    and for the top 10; then POST event (boards written after each commit).
# 3. The same server without Redis (boards by SQL): rank, top 10 and POST.
# 4. `gamify leaderboard rebuild` and `gamify verify` (which compares Redis
#    with the database) on the same data, timed.
# 5. redis-benchmark on a USERS-member sorted set of its own: ZREVRANK of a
#    random member and ZREVRANGE 0 9 WITHSCORES, same connection count.
# Prints a Markdown table; rank and top-10 rows with their ratio to Redis,
# POST with Redis as a ratio to POST without.
#
# Needs wrk, redis-benchmark, PostgreSQL at GAMIFY_BENCH_DATABASE_URL
# (default postgres://postgres@127.0.0.1:5432/test; a schema gamify_bench_rb,
# dropped at the end) and Redis on 127.0.0.1:6379 (keys under gamify:benchrb:).
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${1:-1000000}
DURATION=${2:-10s}
CONNS=${3:-64}
URL=${GAMIFY_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
SCHEMA=gamify_bench_rb
PREFIX=gamify:benchrb:
ADDR=127.0.0.1:8103
KEY=gamify:bench:board
. bench/lib.sh
require_redis_bench
require_free $ADDR
echo "building release binaries..." >&2
cargo build --release --quiet --bin gamify --example bench_fill
DATA=$(mktemp -d -p "$PWD" .bench-boards-redis.XXXX)
PIDS=()
drop_prefix() { redis-cli --scan --pattern "${PREFIX}*" | xargs -r -n 1000 redis-cli del >/dev/null; }
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  redis-cli del $KEY >/dev/null
  drop_prefix
  psql -q "$URL" -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" 2>/dev/null || true
  rm -rf "$DATA"
}
trap cleanup EXIT
export DATABASE_URL=$URL GAMIFY_PG_SCHEMA=$SCHEMA GAMIFY_REDIS_PREFIX=$PREFIX

echo "filling $USERS users into PostgreSQL..." >&2
psql -q "$URL" -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" -c "CREATE SCHEMA $SCHEMA"
drop_prefix
FILL_STARTED=$(date +%s)
GAMIFY_LOG=warn target/release/examples/bench_fill "$URL" "$USERS" "$USERS" >/dev/null
FILL_S=$(( $(date +%s) - FILL_STARTED ))
psql -q "$URL" -c "VACUUM ANALYZE" >/dev/null 2>&1 || true

serve() { # NAME, then extra environment
  local name=$1; shift
  local started
  started=$(date +%s%N)
  env "$@" GAMIFY_ADDR=$ADDR GAMIFY_LOG=info target/release/gamify serve >"$DATA/$name.log" 2>&1 &
  PIDS+=($!)
  wait_listening "$DATA/$name.log"
  echo "$name start-up (listening): $(( ($(date +%s%N) - started) / 1000000 )) ms" >>"$DATA/notes"
  if [ "$name" = redis ]; then
    for _ in $(seq 6000); do grep -q "leaderboards in redis are ready" "$DATA/$name.log" && break; sleep 0.1; done
    echo "$name boards built at start-up: $(grep -o '"seconds":[0-9.]*' "$DATA/$name.log" | head -1) (from the log)" >>"$DATA/notes"
  fi
}
stop() { kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true; unset 'PIDS[-1]'; }
# Like run, but a board read by SQL at millions of users may time out:
# record its errors instead of stopping.
run_sql() {
  local name=$1 users=$2 script=$3 url=$4
  echo "  $name ($DURATION, $CONNS connections)..." >&2
  local line
  line=$(GAMIFY_BENCH_USERS=$users wrk -t1 -c"$CONNS" -d"$DURATION" -s "$script" "$url" | grep '^RESULT')
  echo "$name $(sed -E 's/.*rps=([0-9]+).*/\1/' <<<"$line") $(sed -E 's/.*p50_ms=([0-9.]+).*/\1/' <<<"$line") $(sed -E 's/.*p99_ms=([0-9.]+).*/\1/' <<<"$line")" >>"$DATA/results"
  echo "$name: $line" >>"$DATA/notes"
}

echo "gamify with Redis..." >&2
serve redis REDIS_URL=redis://127.0.0.1:6379
run redis_rank "$USERS" bench/standing.lua "http://$ADDR"
run redis_top10 "$USERS" bench/top10.lua "http://$ADDR"
run redis_post "$USERS" bench/post_event.lua "http://$ADDR"
stop

echo "gamify without Redis (SQL)..." >&2
serve sql REDIS_URL=
run_sql sql_rank "$USERS" bench/standing.lua "http://$ADDR"
run_sql sql_top10 "$USERS" bench/top10.lua "http://$ADDR"
run sql_post "$USERS" bench/post_event.lua "http://$ADDR"
stop

echo "rebuild and verify..." >&2
t=$(date +%s%N)
REDIS_URL=redis://127.0.0.1:6379 GAMIFY_LOG=warn target/release/gamify leaderboard rebuild >>"$DATA/notes"
echo "gamify leaderboard rebuild: $(( ($(date +%s%N) - t) / 1000000 )) ms" >>"$DATA/notes"
t=$(date +%s%N)
REDIS_URL=redis://127.0.0.1:6379 GAMIFY_LOG=warn target/release/gamify verify >>"$DATA/notes"
echo "gamify verify (with the Redis comparison): $(( ($(date +%s%N) - t) / 1000000 )) ms" >>"$DATA/notes"
echo "redis memory for the boards: $(redis-cli memory usage ${PREFIX}board:all:overall) bytes for board:all:overall ($(redis-cli zcard ${PREFIX}board:all:overall) members)" >>"$DATA/notes"

redis_baseline "$USERS" $KEY

echo
echo "| row | requests/s | p50 ms | p99 ms | ratio |"
echo "|---|---:|---:|---:|---:|"
awk '{ rps[$1]=$2; p50[$1]=$3; p99[$1]=$4; order[NR]=$1 }
     END {
       base["redis_rank"]="redis_zrevrank"; base["sql_rank"]="redis_zrevrank"
       base["redis_top10"]="redis_zrevrange"; base["sql_top10"]="redis_zrevrange"
       base["redis_post"]="sql_post"
       for (i = 1; i <= NR; i++) { n = order[i]
         ratio = (n in base) ? sprintf("%.2f× %s", rps[n] / rps[base[n]], base[n]) : ""
         printf "| %s | %d | %s | %s | %s |\n", n, rps[n], p50[n], p99[n], ratio } }' "$DATA/results"
echo
echo "fill: $USERS users in ${FILL_S} s"
cat "$DATA/notes"
echo "$(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ)"
