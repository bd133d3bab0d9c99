#!/usr/bin/env bash
# Measures Gamify against its ceiling in one run, same load tool and settings.
#
#   bench/run.sh [DURATION] [CONNECTIONS]      (defaults: 10s, 64)
#
# Rows: (a) the ceiling (bench/ceiling.rs: same stack, parses the same JSON,
# no work) for POST and GET; (b) POST event for many distinct users (100k)
# and for a few hot users (4); (c) GET balance. Prints a Markdown table with
# requests/s, p50/p99 and each row's ratio to its ceiling. Needs wrk
# (apt-get install wrk). Runs from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10s}
CONNS=${2:-64}
CEIL_ADDR=127.0.0.1:8100
GAMIFY_ADDR_BENCH=127.0.0.1:8101
command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk" >&2; exit 1; }

echo "building release binaries..." >&2
cargo build --release --quiet --bin gamify --example bench_ceiling

DATA=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DATA"; }
trap cleanup EXIT

wait_for() { for _ in $(seq 100); do curl -sf "http://$1$2" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "server on $1 did not start" >&2; exit 1; }

# run NAME USERS SCRIPT URL: one wrk run; appends "NAME rps p50 p99" to $DATA/results
run() {
  local name=$1 users=$2 script=$3 url=$4
  echo "  $name ($DURATION, $CONNS connections)..." >&2
  local line
  line=$(GAMIFY_BENCH_USERS=$users wrk -t1 -c"$CONNS" -d"$DURATION" -s "$script" "$url" | grep '^RESULT')
  echo "$line" | grep -q 'errors=0$' || { echo "$name had errors: $line" >&2; exit 1; }
  local rps p50 p99
  rps=$(sed -E 's/.*rps=([0-9]+).*/\1/' <<<"$line")
  p50=$(sed -E 's/.*p50_ms=([0-9.]+).*/\1/' <<<"$line")
  p99=$(sed -E 's/.*p99_ms=([0-9.]+).*/\1/' <<<"$line")
  echo "$name $rps $p50 $p99" >>"$DATA/results"
}

echo "ceiling:" >&2
CEILING_ADDR=$CEIL_ADDR target/release/examples/bench_ceiling >/dev/null &
PIDS+=($!)
sleep 0.5
run ceiling_post 100000 bench/post_event.lua "http://$CEIL_ADDR"
run ceiling_get 100000 bench/get_balance.lua "http://$CEIL_ADDR"
kill "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true

echo "gamify (SQLite in $DATA):" >&2
GAMIFY_ADDR=$GAMIFY_ADDR_BENCH GAMIFY_DATA_DIR=$DATA GAMIFY_LOG=warn target/release/gamify serve >"$DATA/server.log" 2>&1 &
PIDS+=($!)
wait_for $GAMIFY_ADDR_BENCH /healthz
run event_distinct_users 100000 bench/post_event.lua "http://$GAMIFY_ADDR_BENCH"
run event_hot_users 4 bench/post_event.lua "http://$GAMIFY_ADDR_BENCH"
run balance 100000 bench/get_balance.lua "http://$GAMIFY_ADDR_BENCH"
EVENTS=$(sqlite3 "$DATA/gamify.db" "select count(*) from events" 2>/dev/null || echo "?")

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
echo
echo "wrk -t1 -c$CONNS -d$DURATION; $(nproc) cores; events stored: $EVENTS; $(date -u +%Y-%m-%dT%H:%MZ)"
