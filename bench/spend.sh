#!/usr/bin/env bash
# Spending on PostgreSQL: gamify against one conditional UPDATE, in one run.
#
#   bench/spend.sh [SECONDS] [CONNECTIONS]      (defaults: 10, 16)
#
# Rows: (a) pgbench, CONNECTIONS clients, `UPDATE … SET points = points - n
# WHERE user_id = $1 AND points >= n` on 10 hot rows (bench/pgbench_spend.sql);
# (b) gamify serve on the same database, POST /spend of 1 point for the same
# 10 hot users from wrk with the same number of connections (each spend is a
# checked debit, a movement row and a ledger entry in one transaction).
# Afterwards: every balance must be >= 0, `gamify verify` must pass, and wrk
# must have seen no non-2xx answer (no refusal, no server error), or the run
# fails. pg_test_fsync runs before and after; a run where the two differ by
# more than 2x is marked DISCARD.
#
# Needs wrk, pgbench and pg_test_fsync, and a database at
# GAMIFY_BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test);
# everything goes into a schema gamify_bench_spend that is dropped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
DURATION=${SECS}s
CONNS=${2:-16}
URL=${GAMIFY_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
SCHEMA=gamify_bench_spend
ADDR=127.0.0.1:8102
TOKEN=bench-admin-token-0123456789
export GAMIFY_API_KEY=$TOKEN  # the wrk scripts send it
command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk" >&2; exit 1; }
command -v pgbench >/dev/null || { echo "pgbench is not installed (postgresql-client)" >&2; exit 1; }
PG_TEST_FSYNC=$(command -v pg_test_fsync || ls /usr/lib/postgresql/*/bin/pg_test_fsync | head -1)
. bench/lib.sh
require_free $ADDR

echo "building the release binary..." >&2
cargo build --release --quiet --bin gamify

DATA=$(mktemp -d -p "$PWD" .bench-spend.XXXX)
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
export DATABASE_URL=$URL GAMIFY_PG_SCHEMA=$SCHEMA GAMIFY_LOG=warn
target/release/gamify migrate
psql -q "$URL" -c "SET search_path = $SCHEMA" \
  -c "CREATE TABLE pgbench_wallets (user_id text PRIMARY KEY, points bigint NOT NULL CHECK (points >= 0))" \
  -c "INSERT INTO pgbench_wallets SELECT 'hot_' || i, 1000000000000 FROM generate_series(1, 10) i"

echo "  pgbench (${SECS}s, $CONNS clients)..." >&2
PGOPTIONS="-c search_path=$SCHEMA" pgbench -n -c "$CONNS" -j 2 -T "$SECS" -f bench/pgbench_spend.sql "$URL" >"$DATA/pgbench.out"
PGBENCH_TPS=$(awk '/^tps = / {print int($3); exit}' "$DATA/pgbench.out")
PGBENCH_LAT=$(awk '/latency average/ {print $4; exit}' "$DATA/pgbench.out")
echo "pgbench_update $PGBENCH_TPS avg:$PGBENCH_LAT -" >>"$DATA/results"

echo "gamify on PostgreSQL:" >&2
GAMIFY_ADDR=$ADDR GAMIFY_API_KEY=$TOKEN target/release/gamify serve >"$DATA/server.log" 2>&1 &
PIDS+=("$!")
wait_for $ADDR /readyz
for i in $(seq 10); do
  curl -sf -X POST "http://$ADDR/api/v2/gamify/admin/adjustments" -H "Authorization: Bearer $TOKEN" \
    -H "Content-Type: application/json" \
    -d "{\"user_id\":\"hot_$i\",\"points\":1000000000,\"reason\":\"bench float\"}" >/dev/null
done
run spend_hot_users 10 bench/spend.lua "http://$ADDR"
FINDINGS=$(curl -sf "http://$ADDR/api/v2/gamify/admin/verify" -H "Authorization: Bearer $TOKEN")
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
[ "$FINDINGS" = "[]" ] || { echo "verify found breaches: $FINDINGS" >&2; exit 1; }
NEGATIVE=$(psql -Atq "$URL" -c "SELECT count(*) FROM $SCHEMA.users WHERE total_milli < 0")
[ "$NEGATIVE" = 0 ] || { echo "$NEGATIVE balances below zero" >&2; exit 1; }
SPENDS=$(psql -Atq "$URL" -c "SELECT count(*) FROM $SCHEMA.movements WHERE kind = 'spend'")
ENTRIES=$(psql -Atq "$URL" -c "SELECT count(*) FROM $SCHEMA.ledger WHERE kind = 'spend'")

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
      printf "| %s | %d | %s | %s | %.2f x pgbench_update |\n", n, rps[n], p50[n], p99[n], rps[n] / rps["pgbench_update"]
    }
  }' "$DATA/results"
echo
SWING=$(awk -v a="$FSYNC_BEFORE" -v b="$FSYNC_AFTER" 'BEGIN { r = (a > b) ? a / b : b / a; printf "%.2f", r }')
VERDICT=$(awk -v s="$SWING" 'BEGIN { print (s > 2.0) ? "DISCARD (fsync cost moved more than 2x)" : "kept" }')
echo "pg_test_fsync fdatasync ops/s: before $FSYNC_BEFORE, after $FSYNC_AFTER (x$SWING): $VERDICT"
echo "spends stored: $SPENDS (ledger entries: $ENTRIES); balances below zero: 0; verify: clean; wrk non-2xx: 0"
echo "pgbench -c$CONNS -j2 -T$SECS; wrk -t1 -c$CONNS -d${SECS}s; $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ)"
