#!/usr/bin/env bash
# What tenants cost the requests, in one run.
#
#   [BEFORE=/path/to/older/gamify] bench/tenants.sh [DURATION] [CONNECTIONS]
#   [ROUNDS] [TENANTS]   (defaults: 10s, 64, 2, 50)
#
# Each round starts Gamify (embedded SQLite, a fresh directory) three times
# and runs wrk's event ingest (100k users) and balance reads against it:
# (a) single: no tenant besides the default one, requests carry a key made
# with `gamify keys create` (what every request did before tenants);
# (b) default: TENANTS tenants exist, requests carry the default tenant's
# key (found first); (c) tenant: TENANTS tenants exist, requests carry the
# last tenant's key, so finding its tenant looks through every tenant's
# keys (the first time; then it is remembered). With BEFORE (a binary
# built before tenants), first (z) before: as (a) with that binary, which
# had no tenant dispatch in front of its routes. Rounds alternate, since
# this machine's speed drifts. Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10s}
CONNS=${2:-64}
ROUNDS=${3:-2}
TENANTS=${4:-50}
ADDR=127.0.0.1:8103
. bench/lib.sh
modes_setup $ADDR

secret() { sed -nE 's/.*"secret": "([^"]+)".*/\1/p'; }

# one NAME MODE: a fresh server in MODE (single, default, tenant) under load.
one() {
  local name=$1 mode=$2 dir key
  dir=$(mktemp -d -p "$DATA")
  local env=(GAMIFY_ADDR=$ADDR GAMIFY_DATA_DIR=$dir GAMIFY_LOG=error)
  local bin=target/release/gamify
  [ "$mode" = before ] && bin=$BEFORE
  key=$(env "${env[@]}" "$bin" keys create --name bench --scope ingest --scope read | secret)
  if [ "$mode" = default ] || [ "$mode" = tenant ]; then
    echo "  making $TENANTS tenants..." >&2
    local last
    for i in $(seq "$TENANTS"); do
      last=$(env "${env[@]}" target/release/gamify tenants create "t$i" | secret)
    done
    [ "$mode" = tenant ] && key=$last
  fi
  measure_mode "$name" "$dir" "$key" "$bin" "${env[@]}"
}

# MODES="before single" (for example) runs only those.
if [ -n "${MODES:-}" ]; then
  read -r -a MODES <<<"$MODES"
else
  MODES=(single default tenant)
  [ -n "${BEFORE:-}" ] && MODES=(before "${MODES[@]}")
fi
for round in $(seq "$ROUNDS"); do
  echo "round $round:" >&2
  for mode in "${MODES[@]}"; do one "${mode}_r$round" "$mode"; done
done

modes_table "$ROUNDS" "${MODES[@]}"
