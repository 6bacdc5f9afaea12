#!/usr/bin/env bash
# One run, one MariaDB: balanced in MySQL mode vs the seed's naive design, same
# concurrency; then GET balance through Redis vs through the database.
# balanced's legs are driven by wrk (an external generator; p50/p99/p99.9/max) and each
# transfer leg ends with a check that every acknowledged transfer is in the ledger. The
# naive design is SQL with no HTTP (`balancectl naive`, 64 client threads): its baseline
# is measured at its best.
# Usage: bench/mysql.sh [seconds per scenario, default 10] [connections, default 64]
# Needs build/balanced, build/balancectl, wrk, mariadbd, redis-server, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-64}
accounts=1000
build=${BUILD_DIR:-build}
ctl="$build/balancectl"
work=$(mktemp -d /tmp/balanced-mysql-bench-XXXXXX)
pids=()
source bench/lib.sh
trap cleanup EXIT

machine_line
echo "database: $(mariadbd --version | awk '{print $3}'), InnoDB, innodb_flush_log_at_trx_commit=1 (durable), on this machine"
echo "load: $connections connections, $accounts accounts, uniform, ${seconds}s per scenario; balanced: wrk -t1 -c$connections"
echo

# MariaDB on a fresh datadir, the same for both designs.
start_mariadb
sql "CREATE DATABASE naive; CREATE DATABASE ledger"
"$ctl" migrate --db "$(url naive)" > /dev/null
"$ctl" migrate --db "$(url ledger)" > /dev/null

redis_port=$(free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no > "$work/redis.log" 2>&1 & pids+=($!)
wait_port "$redis_port"

# The seed's design: one database transaction per transfer, one connection per client.
# Run before and after balanced (the mean is the baseline): background work a run leaves
# in InnoDB (purge, page flushing) would otherwise count against whoever runs next.
run_naive() {  # label
  local before
  before=$(cpu_s "$db_pid")
  "$ctl" naive --db "$(url naive)" --connections "$connections" --duration "$seconds" \
    --accounts "$accounts" > "$work/naive.txt"
  naive_line=$(result "$work/naive.txt")
  local done
  done=$(sed -n 's/.*committed=\([0-9]*\).*/\1/p' "$work/naive.txt")
  local us
  us=$(awk -v a="$before" -v b="$(cpu_s "$db_pid")" -v n="$done" 'BEGIN { printf "%.0f", (b - a) * 1e6 / n }')
  echo "naive design, $1 (SQL, no HTTP): $naive_line  database CPU/transfer=${us}us"
  naive_rates+=("$(field "$naive_line" requests_per_s)")
  naive_p99s+=("$(field "$naive_line" p99_ms)")
}
naive_rates=()
naive_p99s=()
run_naive first
quiesce

# balanced, MySQL mode, through HTTP, driven by wrk (bench/wrk/gateway.lua, `none:1000`: a
# random account a<i> per request; p50/p99/p99.9/max): transfers first with no cache (the
# database path alone), then with the Redis cache written through after every commit
# (the production shape); then GET balance through Redis and through the database.
start_balanced() {  # database cache label [flags...]
  local database=$1 cache=$2 label=$3
  shift 3
  port=$(free_port)
  "$build/balanced" --listen "127.0.0.1:$port" --db "$(url "$database")" --cache "$cache" \
    --log-level warn "$@" > "$work/balanced-$label.log" 2>&1 & pids+=($!)
  balanced_pid=$!
  wait_port "$port"
}
stop_balanced() { kill -TERM "$balanced_pid"; wait "$balanced_pid" || true; }
# One wrk leg against the balanced on $port. Sets leg_line (its RESULT fields), leg_ok (2xx
# answers) and leg_db_us (the database's CPU over the leg, per 2xx answer).
wrk_leg() {  # label read|transfer
  local out="$work/wrk-$1.txt" before after
  before=$(cpu_s "$db_pid")
  wrk -t1 -c"$connections" -d"${seconds}s" --latency -s bench/wrk/gateway.lua \
    "http://127.0.0.1:$port" -- "none:$accounts" "$2" "$1-" > "$out"
  after=$(cpu_s "$db_pid")
  leg_line=$(result "$out")
  [[ -n $leg_line ]] || { echo "wrk gave no result ($1):" >&2; cat "$out" >&2; exit 1; }
  leg_ok=$(($(field "$leg_line" requests) - $(field "$leg_line" non2xx)))
  leg_db_us=$(awk -v a="$before" -v b="$after" -v n="$leg_ok" 'BEGIN { printf "%.0f", (b - a) * 1e6 / (n ? n : 1) }')
}
# Every acknowledged transfer is in the ledger: the committed transfers with the leg's ids
# are at least wrk's 2xx answers, and at most one more per connection (answers still on
# their way when wrk stopped).
check_leg() {  # database label
  local stored
  stored=$(sql "SELECT COUNT(*) FROM $1.transactions WHERE transaction_id LIKE '$2-%' AND status = 'committed'" |
           awk 'NR == 2')
  if ((stored < leg_ok || stored > leg_ok + connections)); then
    echo "  check FAILED: $leg_ok acknowledged, $stored committed with the leg's ids" >&2
    exit 1
  fi
  echo "  check: $leg_ok acknowledged transfers, $stored committed with the leg's ids"
}
show() { printf '%-30s %s\n' "$1" "${leg_line% requests=*}${2:+  database CPU/transfer=${leg_db_us}us}"; }

start_balanced ledger none nocache
create_accounts "$port" "$accounts" 100000000000
wrk_leg nocache transfer
nocache_line=$leg_line
show "balanced transfers, no cache:" db
check_leg ledger nocache
stop_balanced
quiesce

start_balanced ledger "redis://127.0.0.1:$redis_port" redis
wrk_leg redis transfer
transfers_line=$leg_line
show "balanced transfers, Redis:" db
check_leg ledger redis
quiesce
wrk_leg redis-reads read
redis_line=$leg_line
show "GET balance via Redis:"
stop_balanced

# The same reads with no cache: every GET is a database query.
start_balanced ledger none db-reads
wrk_leg db-reads read
db_line=$leg_line
show "GET balance via the database:"
stop_balanced

# The same service with batching off: one database transaction per transfer and one
# committer per connection - the seed's per-request shape through the same HTTP stack.
sql "CREATE DATABASE single"
"$ctl" migrate --db "$(url single)" > /dev/null
start_balanced single none single --batch-operations-max 1 --mysql-committers "$connections"
create_accounts "$port" "$accounts" 100000000000
wrk_leg single transfer
single_line=$leg_line
show "batching off (same service):" db
check_leg single single
stop_balanced

quiesce
run_naive last

sleep 2  # let the leader seal the last audit records
"$ctl" verify --db "$(url ledger)" | tail -1 | sed 's/^/after the run: /'

echo
naive_rps=$(awk -v a="${naive_rates[0]}" -v b="${naive_rates[1]}" 'BEGIN { printf "%.0f", (a + b) / 2 }')
echo "naive baseline = mean of first and last: $naive_rps transfers/s"
awk -v n="$naive_rps" -v b="$(field "$transfers_line" rps)" \
    -v c="$(field "$nocache_line" rps)" \
    -v s="$(field "$single_line" rps)" \
    -v r="$(field "$redis_line" rps)" -v d="$(field "$db_line" rps)" \
    -v np="${naive_p99s[1]}" -v bp="$(field "$transfers_line" p99_ms)" 'BEGIN {
  printf "balanced / naive transfers/s:     %.2fx with Redis, %.2fx without a cache  (target >= 5x)\n", b / n, c / n
  printf "balanced / batching off:          %.2fx\n", b / s
  printf "p99 at %s connections:            balanced %.1f ms (target <= 50), naive %.1f ms\n", "'"$connections"'", bp, np
  printf "GET balance, Redis / database:    %.2fx\n", r / d
}'
