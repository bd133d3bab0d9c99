#!/usr/bin/env bash
# What pruning the webhook delivery log costs, in one run.
#
#   bench/prune.sh [OLD] [DURATION] [CONNECTIONS] [ROUNDS]
#                  (defaults: 1000000, 10s, 64, 2)
#
# Makes one embedded database holding OLD finished deliveries 40 days old
# and OLD/5 from today, then, each round, starts Gamify on two fresh copies
# of it and POSTs events for 100k distinct users with wrk: (a) with
# GAMIFY_WEBHOOK_KEEP_DAYS=0 (no pruning: the baseline); (b) with the
# default 30 days, so the sweep at start deletes the OLD rows while the load
# runs. (The deliveries' subscription is to reward.redeemed, which the load
# does not cause, so nothing is sent.) Reports ingest in both, how long the
# pruning took (from the server's own log) and what is left. Rounds
# alternate, since this machine's speed drifts. Needs wrk, sqlite3 and jq.
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=${1:-1000000}
DURATION=${2:-10s}
CONNS=${3:-64}
ROUNDS=${4:-2}
ADDR=127.0.0.1:8101
for tool in wrk sqlite3 jq; do
  command -v $tool >/dev/null || { echo "$tool is not installed: apt-get install $tool" >&2; exit 1; }
done
. bench/lib.sh
require_free $ADDR

echo "building release binaries..." >&2
cargo build --release --quiet --bin gamify

DATA=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DATA"; }
trap cleanup EXIT

echo "making a database with $OLD old deliveries..." >&2
SEED=$DATA/seed
GAMIFY_ADDR=$ADDR GAMIFY_DATA_DIR=$SEED GAMIFY_LOG=error target/release/gamify serve >/dev/null 2>&1 &
pid=$!
wait_for $ADDR /healthz
kill "$pid"; wait "$pid" 2>/dev/null || true
NOW=$(($(date +%s) * 1000))
sqlite3 "$SEED/gamify.db" <<SQL
INSERT INTO webhook_subscriptions (id, url, topics, secret, description, created_at)
VALUES ('whk_bench', 'http://127.0.0.1:9/hook', 'reward.redeemed', 's', 'bench', $NOW);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $OLD + $OLD / 5)
INSERT INTO webhook_deliveries (id, subscription_id, topic, user_id, data, created_at, status,
                                attempts, next_attempt_at, last_attempt_at, last_status)
SELECT 'dlv_bench_' || i, 'whk_bench', 'achievement.unlocked', 'u' || (i % 100000),
       '{"user_id":"u1","achievement":{"id":"first_step"}}', at, 'delivered', 1, at, at, 204
FROM (SELECT i, CASE WHEN i <= $OLD THEN $NOW - 40 * 86400000 + i ELSE $NOW - i END AS at FROM n);
SQL

# one NAME KEEP_DAYS: a fresh copy of the seed under load.
one() {
  local name=$1 keep=$2 dir=$DATA/$1
  cp -r "$SEED" "$dir"
  GAMIFY_ADDR=$ADDR GAMIFY_DATA_DIR=$dir GAMIFY_LOG=info GAMIFY_LOG_FORMAT=json GAMIFY_WEBHOOK_KEEP_DAYS=$keep \
    target/release/gamify serve >"$dir/server.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  wait_for $ADDR /healthz
  run "$name" 100000 bench/post_event.lua "http://$ADDR"
  # The pruning may outlast the load: wait for its line.
  for _ in $(seq 600); do grep -q 'delivery log pruned' "$dir/server.log" && break; [ "$keep" = 0 ] && break; sleep 0.1; done
  kill "$pid"; wait "$pid" 2>/dev/null || true
  local left took=-
  left=$(sqlite3 -readonly "$dir/gamify.db" "SELECT count(*) FROM webhook_deliveries")
  if [ "$keep" != 0 ]; then
    took=$(jq -rs '
      def t: .timestamp | sub("\\.[0-9]+Z$"; "Z") | fromdateiso8601;
      def frac: .timestamp | capture("\\.(?<f>[0-9]+)Z$").f | ("0." + .) | tonumber;
      (map(select(.message == "webhook delivery log pruned")) | first) as $done
      | (map(select(.message == "listening")) | first) as $start
      | (($done | t) + ($done | frac)) - (($start | t) + ($start | frac))
      | . * 100 | round / 100' "$dir/server.log")
  fi
  echo "$name left=$left prune_seconds=$took" >>"$DATA/pruned"
  rm -rf "$dir"
}

for r in $(seq "$ROUNDS"); do
  echo "round $r:" >&2
  if [ $((r % 2)) = 1 ]; then one "kept_$r" 0; one "pruned_$r" 30; else one "pruned_$r" 30; one "kept_$r" 0; fi
done

echo
echo "| round | ingest, nothing pruned (rps) | ingest while pruning $OLD (rps, ratio) | pruning took (s) | deliveries left |"
echo "|---|---:|---:|---:|---:|"
awk 'FNR == NR { rps[$1] = $2; next } { split($3, t, "="); split($2, l, "="); took[$1] = t[2]; left[$1] = l[2] }
  END {
    for (r = 1; ("kept_" r) in rps; r++) {
      k = rps["kept_" r]; p = rps["pruned_" r]
      printf "| %d | %d | %d (%.2f×) | %s | %s |\n", r, k, p, p / k, took["pruned_" r], left["pruned_" r]
    }
  }' "$DATA/results" "$DATA/pruned"
