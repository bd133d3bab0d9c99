#!/usr/bin/env bash
# What rules as data cost, in one run.
#
#   bench/rules.sh [DURATION] [CONNECTIONS] [ROUNDS]   (defaults: 10s, 64, 2)
#   BEFORE=/path/to/older/gamify bench/rules.sh        (adds a third mode)
#
# Each round starts Gamify (embedded SQLite, a fresh directory) for each
# mode and runs wrk's event ingest (100k users) and balance reads against
# it: (a) brief: the built-in rules (version 1); (b) big: a rules file at
# the limits, 64 categories and 256 achievements, most of them counting
# events or points in the categories the load sends, so every event checks
# them all; (c) before, if BEFORE names a gamify binary built from an
# earlier commit (the brief's rules compiled in): what the change itself
# costs. Rounds alternate the modes, since this machine's speed drifts.
# Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10s}
CONNS=${2:-64}
ROUNDS=${3:-2}
ADDR=127.0.0.1:8103
. bench/lib.sh
modes_setup $ADDR

# The big rule set: the brief's five categories (the load uses them) and 59
# more; 256 achievements, the brief's seven first.
BIG=$DATA/big.toml
{
  printf '[categories]\nfinance = 2.0\nlearning = 1.5\nhealth = 1.2\nproductivity = 1.0\nsocial = 0.8\n'
  for i in $(seq 59); do printf 'extra_%02d = 1.0\n' "$i"; done
  # The brief's catalogue, as the binary writes it.
  GAMIFY_DATA_DIR=$DATA/seed target/release/gamify rules show | sed -n '/^\[\[achievements\]\]/,$p'
  cats=(finance learning health productivity social)
  for i in $(seq 249); do
    c=${cats[$((i % 5))]}
    if (( i % 2 )); then
      printf '\n[[achievements]]\nid = "cat_events_%03d"\nkind = "category_events"\ncategory = "%s"\nevents = %d\nbonus = 1\nname = { fi = "T%d", en = "E%d" }\n' "$i" "$c" $((i * 3)) "$i" "$i"
    else
      printf '\n[[achievements]]\nid = "cat_points_%03d"\nkind = "category_points"\ncategory = "%s"\npoints = %d\nbonus = 1\nname = { fi = "P%d", en = "P%d" }\n' "$i" "$c" $((i * 50)) "$i" "$i"
    fi
  done
} >"$BIG"
target/release/gamify rules check "$BIG" >&2

# one NAME MODE: a fresh server in MODE under load.
one() {
  local name=$1 mode=$2 dir bin=target/release/gamify
  dir=$(mktemp -d -p "$DATA")
  local env=(GAMIFY_ADDR=$ADDR GAMIFY_DATA_DIR=$dir GAMIFY_LOG=error)
  case $mode in
    big) env+=(GAMIFY_RULES_FILE=$BIG) ;;
    before) bin=$BEFORE ;;
  esac
  measure_mode "$name" "$dir" "" "$bin" "${env[@]}"
}

MODES=(brief big)
[ -n "${BEFORE:-}" ] && MODES+=(before)
for round in $(seq "$ROUNDS"); do
  echo "round $round:" >&2
  for mode in "${MODES[@]}"; do one "${mode}_r$round" "$mode"; done
done

modes_table "$ROUNDS" "${MODES[@]}"
