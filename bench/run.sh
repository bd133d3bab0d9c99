#!/usr/bin/env bash
# Measures Gamify against its ceiling in one run, same load tool and settings.
#
#   bench/run.sh [DURATION] [CONNECTIONS]      (defaults: 10s, 64)
#
# Rows: (a) the ceiling (bench/ceiling.rs: same stack, parses the same JSON,
# no work) for POST and GET; (b) POST event for many distinct users (100k)
# and for a few hot users (4); (c) GET balance. Prints a Markdown table with
# requests/s, p50/p99 and each row's ratio to its ceiling. Needs wrk
# (apt-get install wrk) and sqlite3 (apt-get install sqlite3, for the event
# count). Also reports the store's own capacity without HTTP
# (bench/store_only.rs), to show where the time goes.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10s}
CONNS=${2:-64}
CEIL_ADDR=127.0.0.1:8100
GAMIFY_ADDR_BENCH=127.0.0.1:8101
command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk" >&2; exit 1; }
. bench/lib.sh
require_free $CEIL_ADDR $GAMIFY_ADDR_BENCH

echo "building release binaries..." >&2
cargo build --release --quiet --bin gamify --example bench_ceiling --example bench_store

DATA=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DATA"; }
trap cleanup EXIT

measure_ceiling $CEIL_ADDR

echo "gamify (SQLite in $DATA):" >&2
GAMIFY_ADDR=$GAMIFY_ADDR_BENCH GAMIFY_DATA_DIR=$DATA GAMIFY_LOG=warn target/release/gamify serve >"$DATA/server.log" 2>&1 &
GAMIFY_PID=$!
PIDS+=("$GAMIFY_PID")
wait_for $GAMIFY_ADDR_BENCH /healthz
kill -0 "$GAMIFY_PID" || { echo "gamify exited; see its log:" >&2; cat "$DATA/server.log" >&2; exit 1; }
run event_distinct_users 100000 bench/post_event.lua "http://$GAMIFY_ADDR_BENCH"
run event_hot_users 4 bench/post_event.lua "http://$GAMIFY_ADDR_BENCH"
# The first pass meets each of the 100k ids once more or less cold (ids of
# users with no events yet are looked up in the database once, then cached
# as absent); the second is the steady state.
run balance_first_pass 100000 bench/get_balance.lua "http://$GAMIFY_ADDR_BENCH"
run balance 100000 bench/get_balance.lua "http://$GAMIFY_ADDR_BENCH"
EVENTS=$(sqlite3 -readonly "$DATA/gamify.db" "select count(*) from events" || echo "?")
kill "$GAMIFY_PID"; wait "$GAMIFY_PID" 2>/dev/null || true

echo "store only, no HTTP (bench/store_only.rs, 64 tasks, 5 s):" >&2
cargo build --release --quiet --example bench_store
STORE_DISTINCT=$(target/release/examples/bench_store 100000 5 | sed -E 's/.*per_sec=([0-9]+).*/\1/')
STORE_HOT=$(target/release/examples/bench_store 4 5 | sed -E 's/.*per_sec=([0-9]+).*/\1/')

echo
echo "| row | requests/s | p50 ms | p99 ms | ratio to ceiling |"
echo "|---|---:|---:|---:|---:|"
awk '
  { rps[$1]=$2; p50[$1]=$3; p99[$1]=$4; order[NR]=$1 }
  END {
    for (i = 1; i <= NR; i++) {
      n = order[i]
      base = (n ~ /balance|get/) ? rps["ceiling_get"] : rps["ceiling_post"]
      printf "| %s | %d | %s | %s | %.2f |\n", n, rps[n], p50[n], p99[n], rps[n] / base
    }
  }' "$DATA/results"
echo "| store only, distinct users (events/s) | $STORE_DISTINCT | | | |"
echo "| store only, hot users (events/s) | $STORE_HOT | | | |"
echo
echo "wrk -t1 -c$CONNS -d$DURATION; $(nproc) cores; events stored by the HTTP rows: $EVENTS; $(date -u +%Y-%m-%dT%H:%MZ)"
