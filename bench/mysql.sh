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
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 600); do (echo > /dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; return 1; }
result() { grep '^RESULT' "$1" | sed 's/RESULT //'; }
field() { sed -n "s/.*$2=\([0-9.]*\).*/\1/p" <<< "$1"; }
cpu_s() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat"; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"), $(uname -r)"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)"
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

# 1. The seed's design: one database transaction per transfer, one connection per client.
before=$(cpu_s "$db_pid")
"$ctl" naive --db "$(url naive)" --connections "$connections" --duration "$seconds" \
  --accounts "$accounts" > "$work/naive.txt"
naive_line=$(result "$work/naive.txt")
naive_done=$(sed -n 's/.*committed=\([0-9]*\).*/\1/p' "$work/naive.txt")
naive_db_us=$(awk -v a="$before" -v b="$(cpu_s "$db_pid")" -v n="$naive_done" 'BEGIN { printf "%.0f", (b - a) * 1e6 / n }')
echo "naive design (SQL, no HTTP):   $naive_line  database CPU/transfer=${naive_db_us}us"

# 2. balanced, MySQL mode, Redis cache, through HTTP.
start_balanced() {
  port=$(free_port)
  "$build/balanced" --listen "127.0.0.1:$port" --db "$(url ledger)" --cache "$1" --log-level warn \
    > "$work/balanced-$2.log" 2>&1 & pids+=($!)
  balanced_pid=$!
  wait_port "$port"
}
start_balanced "redis://127.0.0.1:$redis_port" redis
before=$(cpu_s "$db_pid")
"$ctl" bench --target "127.0.0.1:$port" --connections "$connections" --duration "$seconds" \
  --accounts "$accounts" --account-prefix bench- --quiet > "$work/transfers.txt"
transfers_line=$(result "$work/transfers.txt")
done_transfers=$(sed -n 's/^transfers: ok=\([0-9]*\).*/\1/p' "$work/transfers.txt")
db_us=$(awk -v a="$before" -v b="$(cpu_s "$db_pid")" -v n="$done_transfers" 'BEGIN { printf "%.0f", (b - a) * 1e6 / n }')
echo "balanced transfers (HTTP):     $transfers_line  database CPU/transfer=${db_us}us (incl. check reads)"
grep '^check' "$work/transfers.txt" | sed 's/^/  /'

"$ctl" bench --target "127.0.0.1:$port" --connections "$connections" --duration "$seconds" \
  --accounts "$accounts" --account-prefix bench- --no-setup --read-fraction 1 --quiet > "$work/redis-reads.txt"
redis_line=$(result "$work/redis-reads.txt")
echo "GET balance via Redis:         $redis_line"
kill -TERM "$balanced_pid"; wait "$balanced_pid" || true

# 3. The same reads with no cache: every GET is a database query.
start_balanced none nocache
"$ctl" bench --target "127.0.0.1:$port" --connections "$connections" --duration "$seconds" \
  --accounts "$accounts" --account-prefix bench- --no-setup --read-fraction 1 --quiet > "$work/db-reads.txt"
db_line=$(result "$work/db-reads.txt")
echo "GET balance via the database:  $db_line"
kill -TERM "$balanced_pid"; wait "$balanced_pid" || true

sleep 2  # let the leader seal the last audit records
"$ctl" verify --db "$(url ledger)" | tail -1 | sed 's/^/after the run: /'

echo
awk -v n="$(field "$naive_line" requests_per_s)" -v b="$(field "$transfers_line" requests_per_s)" \
    -v r="$(field "$redis_line" requests_per_s)" -v d="$(field "$db_line" requests_per_s)" \
    -v np="$(field "$naive_line" p99_ms)" -v bp="$(field "$transfers_line" p99_ms)" 'BEGIN {
  printf "balanced / naive transfers/s:     %.2fx  (target >= 5x)\n", b / n
  printf "p99 at %s connections:            balanced %.1f ms (target <= 50), naive %.1f ms\n", "'"$connections"'", bp, np
  printf "GET balance, Redis / database:    %.2fx\n", r / d
}'
