#!/usr/bin/env bash
# One run, one MariaDB: balanced in MySQL mode vs the seed's naive design, same
# concurrency; then GET balance through Redis vs through the database.
# Usage: bench/mysql.sh [seconds per scenario, default 10] [connections, default 64]
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

cpu_s() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat"; }

machine_line
echo "database: $(mariadbd --version | awk '{print $3}'), InnoDB, innodb_flush_log_at_trx_commit=1 (durable), on this machine"
echo "load: $connections connections, $accounts accounts, uniform, ${seconds}s per scenario"
echo

# MariaDB on a fresh datadir, the same for both designs.
db_port=$(free_port)
mariadb-install-db --no-defaults --datadir="$work/data" --user=root \
  --auth-root-authentication-method=normal --skip-test-db > "$work/install.log" 2>&1
mariadbd --no-defaults --datadir="$work/data" --user=root --bind-address=127.0.0.1 \
  --port="$db_port" --socket="$work/mysqld.sock" --pid-file="$work/mysqld.pid" \
  --skip-name-resolve --innodb-buffer-pool-size=1G --innodb-log-file-size=512M \
  --max-connections=1000 > "$work/mariadbd.log" 2>&1 & pids+=($!)
db_pid=$!
wait_port "$db_port"
sql() { mariadb --no-defaults -h127.0.0.1 -P"$db_port" -uroot -e "$1"; }
url() { echo "mysql://root@127.0.0.1:$db_port/$1"; }
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
# Waits (at most a minute) until InnoDB has purged old row versions and flushed dirty
# pages, so that one scenario's leftovers do not run during the next.
quiesce() {
  for _ in $(seq 60); do
    local history dirty
    history=$(sql "SHOW ENGINE INNODB STATUS\G" | sed -n 's/^History list length \([0-9]*\).*/\1/p')
    dirty=$(sql "SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'" | awk 'NR == 2 { print $2 }')
    [[ ${history:-0} -lt 1000 && ${dirty:-0} -lt 500 ]] && return 0
    sleep 1
  done
}

run_naive first
quiesce

# balanced, MySQL mode, through HTTP: first with no cache (the database path alone),
# then with the Redis cache written through after every commit (the production shape).
start_balanced() {
  port=$(free_port)
  "$build/balanced" --listen "127.0.0.1:$port" --db "$(url ledger)" --cache "$1" --log-level warn \
    > "$work/balanced-$2.log" 2>&1 & pids+=($!)
  balanced_pid=$!
  wait_port "$port"
}
# The database's CPU is sampled when the load phase ends (the RESULT line), before the
# bench fetches every acknowledged transfer back to check it.
bench_with_db_cpu() {  # output file, bench arguments...
  local out=$1; shift
  local before after
  before=$(cpu_s "$db_pid")
  "$ctl" bench "$@" > "$out" &
  local bench_pid=$!
  until grep -q '^RESULT' "$out" 2>/dev/null || ! kill -0 "$bench_pid" 2>/dev/null; do sleep 0.05; done
  after=$(cpu_s "$db_pid")
  wait "$bench_pid"
  local done
  done=$(sed -n 's/^transfers: ok=\([0-9]*\).*/\1/p' "$out")
  awk -v a="$before" -v b="$after" -v n="$done" 'BEGIN { printf "%.0f", (b - a) * 1e6 / n }'
}
start_balanced none transfers-nocache
db_us=$(bench_with_db_cpu "$work/transfers-nocache.txt" --target "127.0.0.1:$port" \
  --connections "$connections" --duration "$seconds" --accounts "$accounts" \
  --account-prefix bench- --quiet)
nocache_line=$(result "$work/transfers-nocache.txt")
echo "balanced transfers, no cache:  $nocache_line  database CPU/transfer=${db_us}us"
grep '^check' "$work/transfers-nocache.txt" | sed 's/^/  /'
kill -TERM "$balanced_pid"; wait "$balanced_pid" || true
quiesce

start_balanced "redis://127.0.0.1:$redis_port" redis
db_us=$(bench_with_db_cpu "$work/transfers.txt" --target "127.0.0.1:$port" \
  --connections "$connections" --duration "$seconds" --accounts "$accounts" \
  --account-prefix bench- --no-setup --quiet)
transfers_line=$(result "$work/transfers.txt")
echo "balanced transfers, Redis:     $transfers_line  database CPU/transfer=${db_us}us"
grep '^check' "$work/transfers.txt" | sed 's/^/  /'
quiesce

"$ctl" bench --target "127.0.0.1:$port" --connections "$connections" --duration "$seconds" \
  --accounts "$accounts" --account-prefix bench- --no-setup --read-fraction 1 --quiet > "$work/redis-reads.txt"
redis_line=$(result "$work/redis-reads.txt")
echo "GET balance via Redis:         $redis_line"
kill -TERM "$balanced_pid"; wait "$balanced_pid" || true

# The same reads with no cache: every GET is a database query.
start_balanced none nocache
"$ctl" bench --target "127.0.0.1:$port" --connections "$connections" --duration "$seconds" \
  --accounts "$accounts" --account-prefix bench- --no-setup --read-fraction 1 --quiet > "$work/db-reads.txt"
db_line=$(result "$work/db-reads.txt")
echo "GET balance via the database:  $db_line"
kill -TERM "$balanced_pid"; wait "$balanced_pid" || true

# The same service with batching off: one database transaction per transfer and one
# committer per connection - the seed's per-request shape through the same HTTP stack.
sql "CREATE DATABASE single"
"$ctl" migrate --db "$(url single)" > /dev/null
port=$(free_port)
"$build/balanced" --listen "127.0.0.1:$port" --db "$(url single)" --cache none --log-level warn \
  --batch-operations-max 1 --mysql-committers "$connections" > "$work/balanced-single.log" 2>&1 & pids+=($!)
balanced_pid=$!
wait_port "$port"
single_us=$(bench_with_db_cpu "$work/single.txt" --target "127.0.0.1:$port" \
  --connections "$connections" --duration "$seconds" --accounts "$accounts" --quiet)
single_line=$(result "$work/single.txt")
echo "batching off (same service):   $single_line  database CPU/transfer=${single_us}us"
kill -TERM "$balanced_pid"; wait "$balanced_pid" || true

quiesce
run_naive last

sleep 2  # let the leader seal the last audit records
"$ctl" verify --db "$(url ledger)" | tail -1 | sed 's/^/after the run: /'

echo
naive_rps=$(awk -v a="${naive_rates[0]}" -v b="${naive_rates[1]}" 'BEGIN { printf "%.0f", (a + b) / 2 }')
echo "naive baseline = mean of first and last: $naive_rps transfers/s"
awk -v n="$naive_rps" -v b="$(field "$transfers_line" requests_per_s)" \
    -v c="$(field "$nocache_line" requests_per_s)" \
    -v s="$(field "$single_line" requests_per_s)" \
    -v r="$(field "$redis_line" requests_per_s)" -v d="$(field "$db_line" requests_per_s)" \
    -v np="${naive_p99s[1]}" -v bp="$(field "$transfers_line" p99_ms)" 'BEGIN {
  printf "balanced / naive transfers/s:     %.2fx with Redis, %.2fx without a cache  (target >= 5x)\n", b / n, c / n
  printf "balanced / batching off:          %.2fx\n", b / s
  printf "p99 at %s connections:            balanced %.1f ms (target <= 50), naive %.1f ms\n", "'"$connections"'", bp, np
  printf "GET balance, Redis / database:    %.2fx\n", r / d
}'
