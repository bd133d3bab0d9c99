#!/usr/bin/env bash
# Export and import at scale: time and peak memory (issue #8).
#
#   bench/data.sh [EVENTS] [USERS]       (defaults: 1000000, 100000)
#
# Fills a new SQLite database with EVENTS events (and a spend after every
# 20th) through the store (bench/fill.rs), then measures with /usr/bin/time:
# `gamify export` of it to NDJSON, `gamify import` of that file into a new
# SQLite database, and into a new PostgreSQL schema (each import includes
# its own proof: re-export, line-by-line comparison, verify), and `gamify
# verify` alone on each backend. Peak memory is
# the maximum resident set size. Everything lives in a scratch directory
# and a schema gamify_bench_data, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-1000000}
USERS=${2:-100000}
URL=${GAMIFY_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
SCHEMA=gamify_bench_data
command -v /usr/bin/time >/dev/null || { echo "GNU time is not installed: apt-get install time" >&2; exit 1; }
echo "building release binaries..." >&2
cargo build --release --quiet --bin gamify --example bench_fill
DATA=$(mktemp -d -p "$PWD" .bench-data.XXXX)
cleanup() {
  psql -q "$URL" -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" 2>/dev/null || true
  rm -rf "$DATA"
}
trap cleanup EXIT

measure() { # NAME, then the command
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$DATA/time" "$@" >"$DATA/$name.out" 2>"$DATA/$name.err" \
    || { echo "$name failed:"; tail -5 "$DATA/$name.err"; exit 1; }
  read -r secs kib <"$DATA/time"
  echo "$name $secs $kib" >>"$DATA/results"
}

echo "filling $EVENTS events for $USERS users..." >&2
measure fill target/release/examples/bench_fill "$DATA/source.db" "$EVENTS" "$USERS"
export GAMIFY_LOG=warn
measure export env DATABASE_URL="sqlite://$DATA/source.db" target/release/gamify export --out "$DATA/all.ndjson"
BYTES=$(stat -c %s "$DATA/all.ndjson")
LINES=$(wc -l <"$DATA/all.ndjson")
measure import_sqlite env DATABASE_URL="sqlite://$DATA/copy.db" target/release/gamify import "$DATA/all.ndjson"
psql -q "$URL" -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" -c "CREATE SCHEMA $SCHEMA"
measure import_postgres env DATABASE_URL="$URL" GAMIFY_PG_SCHEMA=$SCHEMA target/release/gamify import "$DATA/all.ndjson"
measure verify_sqlite env DATABASE_URL="sqlite://$DATA/source.db" target/release/gamify verify
measure verify_postgres env DATABASE_URL="$URL" GAMIFY_PG_SCHEMA=$SCHEMA target/release/gamify verify

echo
echo "| step | seconds | peak memory (MiB) |"
echo "|---|---:|---:|"
awk '{ printf "| %s | %s | %.0f |\n", $1, $2, $3 / 1024 }' "$DATA/results"
echo
echo "events: $EVENTS, users: $USERS; export: $LINES lines, $((BYTES / 1048576)) MiB; $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ)"
