#!/usr/bin/env bash
# What webhooks cost ingest, and how fast the outbox drains, in one run.
#
#   bench/webhooks.sh [DURATION] [CONNECTIONS] [ROUNDS]   (defaults: 10s, 64, 2)
#
# Each round starts Gamify (embedded SQLite, a fresh directory) three times
# and POSTs events for 100k distinct users with wrk: (a) no subscription;
# (b) one subscription to every type a write tells about (first_step,
# levels, spends... about one delivery per new user here); (c) one to
# event.recorded (one delivery per event: what GAMIFY_EXTERNAL_API
# forwarding writes); (d) as (b) with GAMIFY_WEBHOOK_SEND=false: the cost of
# writing the outbox alone, without sending. The receiver is bench/ceiling.rs's POST /hook (204).
# After (b) and (c) it waits for the outbox to drain and reports deliveries
# per second from the start of the load. Rounds alternate, since this
# machine's speed drifts. Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10s}
CONNS=${2:-64}
ROUNDS=${3:-2}
HOOK_ADDR=127.0.0.1:8100
ADDR=127.0.0.1:8101
TOKEN=bench-admin-token-0123456789
export GAMIFY_API_KEY=$TOKEN  # the wrk scripts send it
command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk" >&2; exit 1; }
. bench/lib.sh
require_free $HOOK_ADDR $ADDR

echo "building release binaries..." >&2
cargo build --release --quiet --bin gamify --example bench_ceiling

DATA=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DATA"; }
trap cleanup EXIT
CEILING_ADDR=$HOOK_ADDR target/release/examples/bench_ceiling >/dev/null &
PIDS+=("$!")

pending() { curl -sf "http://$ADDR/metrics" | awk '/^gamify_webhook_outbox_pending /{print $2}'; }
delivered() { curl -sf "http://$ADDR/metrics" | awk '/^gamify_webhook_attempts_total\{outcome="delivered"\}/{print $2}'; }

# one NAME EVENTS_JSON [SEND]: a fresh server, subscribed to EVENTS_JSON
# (none if empty), under load; then the drain (if it sends).
one() {
  local name=$1 events=$2 send=${3:-true} dir
  dir=$(mktemp -d -p "$DATA")
  GAMIFY_ADDR=$ADDR GAMIFY_DATA_DIR=$dir GAMIFY_LOG=error GAMIFY_API_KEY=$TOKEN GAMIFY_WEBHOOK_SEND=$send \
    target/release/gamify serve >"$dir/server.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  wait_for $ADDR /healthz
  if [ -n "$events" ]; then
    curl -sf -X POST "http://$ADDR/api/v2/gamify/admin/webhooks" -H "Authorization: Bearer $TOKEN" \
      -H 'Content-Type: application/json' -d "{\"url\":\"http://$HOOK_ADDR/hook\",\"events\":$events}" >/dev/null
  fi
  local start=$SECONDS
  run "$name" 100000 bench/post_event.lua "http://$ADDR"
  if [ -n "$events" ] && [ "$send" = true ]; then
    while [ "$(pending)" != "0" ]; do sleep 0.2; done
    local took=$((SECONDS - start)) n
    n=$(delivered)
    echo "$name deliveries=$n seconds=$took per_sec=$((n / (took > 0 ? took : 1)))" >>"$DATA/drain"
  fi
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

TOLD='["achievement.unlocked","level.up","streak.extended","points.spent","reward.redeemed"]'
for r in $(seq "$ROUNDS"); do
  echo "round $r:" >&2
  one "none_$r" ""
  one "told_$r" "$TOLD"
  one "recorded_$r" '["event.recorded"]'
  one "unsent_$r" "$TOLD" false
done

echo
echo "| round | no subscription rps | every told type rps (ratio) | event.recorded rps (ratio) | told, not sent rps (ratio) |"
echo "|---|---:|---:|---:|---:|"
awk '{ rps[$1]=$2 } END {
  for (r = 1; ("none_" r) in rps; r++) {
    n = rps["none_" r]; t = rps["told_" r]; e = rps["recorded_" r]; u = rps["unsent_" r]
    printf "| %d | %d | %d (%.2f×) | %d (%.2f×) | %d (%.2f×) |\n", r, n, t, t / n, e, e / n, u, u / n
  }
}' "$DATA/results"
echo
echo "Outbox drain (deliveries sent, seconds from the start of the load until none pending):"
sed 's/^/    /' "$DATA/drain"
