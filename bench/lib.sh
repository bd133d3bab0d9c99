# What bench/run.sh and bench/pg.sh share. Sourced; expects DURATION (wrk's
# -d, such as 10s), CONNS, DATA (a scratch dir) and PIDS (an array) set.

# Refuses to measure when something already listens on an address.
require_free() {
  for addr in "$@"; do
    if curl -s -o /dev/null "http://$addr/"; then
      echo "something already listens on $addr; stop it first (results would measure it)" >&2
      exit 1
    fi
  done
}

# Waits until http://ADDR/PATH answers.
wait_for() { for _ in $(seq 100); do curl -sf "http://$1$2" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "server on $1 did not start" >&2; exit 1; }

# run NAME USERS SCRIPT URL: one wrk run; appends "NAME rps p50 p99" to $DATA/results.
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

# Runs the bare axum ceiling (bench/ceiling.rs) on ADDR for POST and GET.
measure_ceiling() {
  echo "ceiling:" >&2
  CEILING_ADDR=$1 target/release/examples/bench_ceiling >/dev/null &
  local pid=$!
  PIDS+=("$pid")
  sleep 0.5
  run ceiling_post 100000 bench/post_event.lua "http://$1"
  run ceiling_get 100000 bench/get_balance.lua "http://$1"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

# pg_test_fsync's fdatasync ops/s for one 8 kB write (PostgreSQL's default
# wal_sync_method on Linux). Expects PG_TEST_FSYNC and DATA set.
fsync_rate() {
  "$PG_TEST_FSYNC" -s 2 -f "$DATA/fsync.test" 2>/dev/null \
    | awk '/one 8kB write/ {s=1} s && /^[ \t]+fdatasync/ && !done {print int($2); done=1}'
}

# redis_baseline USERS KEY: a sorted set KEY of USERS members in Redis, then
# redis-benchmark (CONNS connections) running ZREVRANK of a random member
# and ZREVRANGE 0 9 WITHSCORES; appends "redis_zrevrank|redis_zrevrange rps
# p50 p99" to $DATA/results.
redis_baseline() {
  redis_fill "$@"
  redis_measure "$@"
}

# redis_fill USERS KEY: the sorted set alone.
redis_fill() {
  local users=$1 key=$2
  echo "redis: $users members..." >&2
  redis-cli del "$key" >/dev/null
  redis-cli eval "for i = 0, tonumber(ARGV[1]) - 1 do redis.call('ZADD', KEYS[1], (i * 7919) % 100000, string.format('user_%012d', i)) end return redis.call('ZCARD', KEYS[1])" 1 "$key" "$users" >/dev/null
}

# redis_measure USERS KEY: the two redis-benchmark rows alone.
redis_measure() {
  local users=$1 key=$2
  local requests=$(( CONNS * 5000 ))
  local name line
  for name in redis_zrevrank redis_zrevrange; do
    echo "  $name ($requests requests, $CONNS connections)..." >&2
    if [ $name = redis_zrevrank ]; then set -- ZREVRANK "$key" user___rand_int__; else set -- ZREVRANGE "$key" 0 9 WITHSCORES; fi
    # test,rps,avg,min,p50,p95,p99,max
    line=$(redis-benchmark -c "$CONNS" -n "$requests" -r "$users" --csv "$@" | tail -1 | tr -d '"')
    echo "$name $(cut -d, -f2 <<<"$line" | cut -d. -f1) $(cut -d, -f5 <<<"$line") $(cut -d, -f7 <<<"$line")" >>"$DATA/results"
  done
}

# wait_listening LOG: waits (up to 20 minutes) for a server's "listening"
# line: a start-up that builds leaderboards for millions takes minutes.
wait_listening() {
  for _ in $(seq 12000); do grep -q '"listening"' "$1" && return 0; sleep 0.1; done
  echo "server did not start; its log: $1" >&2; exit 1
}

# Refuses to run without wrk, redis-benchmark and a reachable Redis.
require_redis_bench() {
  command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk" >&2; exit 1; }
  command -v redis-benchmark >/dev/null || { echo "redis-benchmark is not installed (redis-tools)" >&2; exit 1; }
  redis-cli ping >/dev/null || { echo "Redis is not reachable on 127.0.0.1:6379" >&2; exit 1; }
}

# modes_setup ADDR: what bench/auth.sh, rules.sh and tenants.sh do first:
# refuse without wrk or with ADDR taken, build the release binary, and make
# DATA (a scratch dir) and PIDS (servers to stop), both cleaned up on exit.
modes_setup() {
  command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk" >&2; exit 1; }
  require_free "$1"
  echo "building the release binary..." >&2
  cargo build --release --quiet --bin gamify
  DATA=$(mktemp -d)
  PIDS=()
  trap modes_cleanup EXIT
}

# measure_mode NAME DIR KEY BIN ENV...: what one() in bench/auth.sh, rules.sh
# and tenants.sh ends with: BIN serves on $ADDR with ENV set (its log in
# DIR), wrk posts events then reads balances (with KEY, if not empty),
# recorded as NAME_ingest and NAME_balance; then the server stops.
measure_mode() {
  local name=$1 dir=$2 key=$3 bin=$4
  shift 4
  env "$@" "$bin" serve >"$dir/server.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  wait_for "$ADDR" /healthz
  GAMIFY_API_KEY=$key run "${name}_ingest" 100000 bench/post_event.lua "http://$ADDR"
  GAMIFY_API_KEY=$key run "${name}_balance" 100000 bench/get_balance.lua "http://$ADDR"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

modes_cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DATA"; }

# modes_table ROUNDS MODE...: the Markdown table of the runs that one() in
# bench/auth.sh and bench/rules.sh recorded as MODE_rROUND_ingest and
# MODE_rROUND_balance in $DATA/results, round by round.
modes_table() {
  local rounds=$1 round mode i b
  shift
  echo
  echo "| Run | events/s | p99 ms | balance reads/s | p99 ms |"
  echo "|---|---:|---:|---:|---:|"
  for round in $(seq "$rounds"); do
    for mode in "$@"; do
      i=$(awk -v n="${mode}_r${round}_ingest" '$1==n {print $2" "$4}' "$DATA/results")
      b=$(awk -v n="${mode}_r${round}_balance" '$1==n {print $2" "$4}' "$DATA/results")
      echo "| $mode (round $round) | ${i% *} | ${i#* } | ${b% *} | ${b#* } |"
    done
  done
  echo
  echo "wrk -t1 -c$CONNS -d$DURATION; $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ)"
}
