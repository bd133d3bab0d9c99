#!/usr/bin/env bash
# What checking API keys costs, in one run.
#
#   bench/auth.sh [DURATION] [CONNECTIONS] [ROUNDS]   (defaults: 10s, 64, 2)
#
# Each round starts Gamify (embedded SQLite, a fresh directory) three times
# and runs wrk's event ingest (100k users) and balance reads against it:
# (a) open: no key exists, requests carry none; (b) GAMIFY_API_KEY set, every
# request carries it; (c) a key made with `gamify keys create` (ingest and
# read), every request carries it: the table's in-memory copy; (d) as (c)
# with the rate limiter on, set so high that it refuses nothing: what
# keeping each key's bucket costs. Rounds alternate, since this machine's
# speed drifts. Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10s}
CONNS=${2:-64}
ROUNDS=${3:-2}
ADDR=127.0.0.1:8102
CONFIGURED=bench-configured-key-0123456789
. bench/lib.sh
modes_setup $ADDR

# one NAME MODE: a fresh server in MODE (open, configured, made) under load.
one() {
  local name=$1 mode=$2 dir key=""
  dir=$(mktemp -d -p "$DATA")
  local env=(GAMIFY_ADDR=$ADDR GAMIFY_DATA_DIR=$dir GAMIFY_LOG=error)
  case $mode in
    configured) env+=(GAMIFY_API_KEY=$CONFIGURED); key=$CONFIGURED ;;
    limited | made)
      [ "$mode" = limited ] && env+=(GAMIFY_KEY_RATE_PER_SECOND=100000000 GAMIFY_KEY_BURST=100000000)
      key=$(env "${env[@]}" target/release/gamify keys create --name bench --scope ingest --scope read \
        | sed -nE 's/.*"secret": "([^"]+)".*/\1/p') ;;
  esac
  measure_mode "$name" "$dir" "$key" target/release/gamify "${env[@]}"
}

for round in $(seq "$ROUNDS"); do
  echo "round $round:" >&2
  one "open_r$round" open
  one "configured_r$round" configured
  one "made_r$round" made
  one "limited_r$round" limited
done

modes_table "$ROUNDS" open configured made limited
