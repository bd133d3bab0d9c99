#!/usr/bin/env bash
# Gamify on PostgreSQL against pgbench on the same server, in one run.
#
#   bench/pg.sh [SECONDS] [CONNECTIONS]      (defaults: 10, 64)
#
# Rows: (a) pgbench, CONNECTIONS clients, one INSERT of one event row per
# transaction (bench/pgbench_insert.sql) into a copy of the events table;
# (b) gamify serve on the same database, POST event from wrk with the same
# number of connections, for many distinct users (100k) and for 4 hot users;
# (c) the bare axum ceiling (bench/ceiling.rs) for GET, and gamify's GET
# balance; (d) the same node restarted with GAMIFY_PG_EXCLUSIVE=true (one
# node holding the lease, users' state served from memory): GET balance for
# the same users, a first pass that fills its cache and a second, and POST
# event for distinct users again. pg_test_fsync runs before and after: this disk's fsync cost swings
# a lot, and a run where the two differ by more than 2x is marked DISCARD.
#
# Needs wrk and pgbench/pg_test_fsync (PostgreSQL's client tools), and a
# database at GAMIFY_BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test);
# everything goes into a schema gamify_bench that is dropped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
DURATION=${SECS}s
CONNS=${2:-64}
URL=${GAMIFY_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
SCHEMA=gamify_bench
CEIL_ADDR=127.0.0.1:8100
GAMIFY_ADDR_BENCH=127.0.0.1:8101
command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk" >&2; exit 1; }
command -v pgbench >/dev/null || { echo "pgbench is not installed (postgresql-client)" >&2; exit 1; }
PG_TEST_FSYNC=$(command -v pg_test_fsync || ls /usr/lib/postgresql/*/bin/pg_test_fsync | head -1)
. bench/lib.sh
require_free $CEIL_ADDR $GAMIFY_ADDR_BENCH

echo "building release binaries..." >&2
cargo build --release --quiet --bin gamify --example bench_ceiling

DATA=$(mktemp -d -p "$PWD" .bench-pg.XXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  psql -q "$URL" -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" 2>/dev/null || true
  rm -rf "$DATA"
}
trap cleanup EXIT


echo "pg_test_fsync (before)..." >&2
FSYNC_BEFORE=$(fsync_rate)

psql -q "$URL" -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" -c "CREATE SCHEMA $SCHEMA"
DATABASE_URL=$URL GAMIFY_PG_SCHEMA=$SCHEMA GAMIFY_LOG=warn target/release/gamify migrate
psql -q "$URL" -c "SET search_path = $SCHEMA" -c "CREATE TABLE pgbench_events (LIKE events INCLUDING ALL)"

echo "  pgbench (${SECS}s, $CONNS clients)..." >&2
PGOPTIONS="-c search_path=$SCHEMA" pgbench -n -c "$CONNS" -j 2 -T "$SECS" -f bench/pgbench_insert.sql "$URL" >"$DATA/pgbench.out"
PGBENCH_TPS=$(awk '/^tps = / {print int($3); exit}' "$DATA/pgbench.out")
PGBENCH_P50=$(awk '/latency average/ {print $4; exit}' "$DATA/pgbench.out")
echo "pgbench_insert $PGBENCH_TPS avg:$PGBENCH_P50 -" >>"$DATA/results"

measure_ceiling $CEIL_ADDR

# serve_gamify LOG [VAR=VALUE...]: gamify serve on the bench schema, with
# the extra settings given, logging to $DATA/LOG; waits until it is ready.
serve_gamify() {
  local log=$1; shift
  env DATABASE_URL="$URL" GAMIFY_PG_SCHEMA=$SCHEMA GAMIFY_ADDR=$GAMIFY_ADDR_BENCH GAMIFY_LOG=warn "$@" \
    target/release/gamify serve >"$DATA/$log" 2>&1 &
  GAMIFY_PID=$!
  PIDS+=("$GAMIFY_PID")
  wait_for $GAMIFY_ADDR_BENCH /readyz
}

echo "gamify on PostgreSQL:" >&2
serve_gamify server.log
run event_distinct_users 100000 bench/post_event.lua "http://$GAMIFY_ADDR_BENCH"
run event_hot_users 4 bench/post_event.lua "http://$GAMIFY_ADDR_BENCH"
run balance 100000 bench/get_balance.lua "http://$GAMIFY_ADDR_BENCH"
kill "$GAMIFY_PID"; wait "$GAMIFY_PID" 2>/dev/null || true

echo "gamify on PostgreSQL, one exclusive node:" >&2
serve_gamify server-exclusive.log GAMIFY_PG_EXCLUSIVE=true
run balance_exclusive_first_pass 100000 bench/get_balance.lua "http://$GAMIFY_ADDR_BENCH"
run balance_exclusive 100000 bench/get_balance.lua "http://$GAMIFY_ADDR_BENCH"
run event_distinct_users_exclusive 100000 bench/post_event.lua "http://$GAMIFY_ADDR_BENCH"
kill "$GAMIFY_PID"; wait "$GAMIFY_PID" 2>/dev/null || true
EVENTS=$(psql -Atq "$URL" -c "SELECT count(*) FROM $SCHEMA.events")
ROWS=$(psql -Atq "$URL" -c "SELECT count(*) FROM $SCHEMA.pgbench_events")

echo "pg_test_fsync (after)..." >&2
FSYNC_AFTER=$(fsync_rate)

echo
echo "| row | per second | p50 ms | p99 ms | ratio |"
echo "|---|---:|---:|---:|---:|"
awk '
  { rps[$1]=$2; p50[$1]=$3; p99[$1]=$4; order[NR]=$1 }
  END {
    for (i = 1; i <= NR; i++) {
      n = order[i]
      if (n ~ /^event/) { base = rps["pgbench_insert"]; against = "pgbench" }
      else if (n ~ /balance|get/) { base = rps["ceiling_get"]; against = "ceiling_get" }
      else if (n == "ceiling_post") { base = rps["ceiling_post"]; against = "ceiling_post" }
      else { base = rps[n]; against = n }
      printf "| %s | %d | %s | %s | %.2f x %s |\n", n, rps[n], p50[n], p99[n], rps[n] / base, against
    }
  }' "$DATA/results"
echo
SWING=$(awk -v a="$FSYNC_BEFORE" -v b="$FSYNC_AFTER" 'BEGIN { r = (a > b) ? a / b : b / a; printf "%.2f", r }')
VERDICT=$(awk -v s="$SWING" 'BEGIN { print (s > 2.0) ? "DISCARD (fsync cost moved more than 2x)" : "kept" }')
echo "pg_test_fsync fdatasync ops/s: before $FSYNC_BEFORE, after $FSYNC_AFTER (x$SWING): $VERDICT"
echo "pgbench rows stored: $ROWS; gamify events stored: $EVENTS; pgbench -c$CONNS -j2 -T$SECS; wrk -t1 -c$CONNS -d${SECS}s; $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ)"
