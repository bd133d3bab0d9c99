#!/usr/bin/env bash
# Same-run A/B of two gamify builds on the embedded default: for each round,
# each build (alternated) gets a fresh SQLite directory, 8 s of distinct-user
# ingest and then 8 s of balance reads over the same 100k users, wrk -t1
# -c64. The machine's speed drifts between runs, so only pairs taken next to
# each other compare.
#
#   bench/ab.sh BEFORE_BIN AFTER_BIN [ROUNDS]     # ROUNDS defaults to 3
#
# Prints one line per run: build, row, wrk's RESULT line.
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE=${1:?usage: bench/ab.sh BEFORE_BIN AFTER_BIN [ROUNDS]}
AFTER=${2:?usage: bench/ab.sh BEFORE_BIN AFTER_BIN [ROUNDS]}
ROUNDS=${3:-3}
ADDR=127.0.0.1:8200
DURATION=8s
CONNS=64
source bench/lib.sh
require_free "$ADDR"

one() {
  local bin=$1 label=$2 dir pid
  dir=$(mktemp -d)
  GAMIFY_DATA_DIR=$dir GAMIFY_ADDR=$ADDR GAMIFY_LOG=warn "$bin" serve >/dev/null 2>&1 &
  pid=$!
  wait_for "$ADDR" /healthz
  for row in post_event:ingest get_balance:balance; do
    local line
    line=$(GAMIFY_BENCH_USERS=100000 wrk -t1 -c"$CONNS" -d"$DURATION" -s "bench/${row%%:*}.lua" "http://$ADDR" | grep '^RESULT')
    echo "$label ${row##*:} $line"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
}

for round in $(seq "$ROUNDS"); do
  echo "round $round of $ROUNDS" >&2
  one "$BEFORE" before
  one "$AFTER" after
done
