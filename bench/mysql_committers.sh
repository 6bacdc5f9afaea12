#!/usr/bin/env bash
# balanced in MySQL mode (no cache, durable MariaDB on this machine) with different
# --mysql-committers, legs alternated in the order given (e.g. 4 1 2 4 1 2), each driven
# by wrk (-t1 -c64, bench/wrk/gateway.lua, a random account of 1,000 per transfer). Per
# leg: throughput, p50/p99/p99.9/max, and the CPU per transfer of the database and of
# balanced, from /proc. Each leg ends with the check of bench/mysql.sh: every acknowledged
# transfer is committed.
# Usage: bench/mysql_committers.sh [seconds per leg, default 10] COMMITTERS...
# Needs build/balanced, build/balancectl, wrk, mariadbd, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
shift || true
(($# > 0)) || set -- 4 1 2 4 1 2
connections=64
accounts=1000
build=${BUILD_DIR:-build}
work=$(mktemp -d /tmp/balanced-committers-bench-XXXXXX)
pids=()
source bench/lib.sh
trap cleanup EXIT

machine_line
echo "database: $(mariadbd --version | awk '{print $3}'), InnoDB, durable, on this machine; no cache"
echo "load: wrk -t1 -c$connections, $accounts accounts, ${seconds}s per leg; legs: $*"
echo
start_mariadb
sql "CREATE DATABASE ledger"
"$build/balancectl" migrate --db "$(url ledger)" > /dev/null

leg=0
for committers in "$@"; do
  leg=$((leg + 1))
  port=$(free_port)
  "$build/balanced" --listen "127.0.0.1:$port" --db "$(url ledger)" --cache none --log-level warn \
    --mysql-committers "$committers" > "$work/balanced-$leg.log" 2>&1 & pids+=($!)
  balanced_pid=$!
  wait_port "$port"
  ((leg > 1)) || create_accounts "$port" "$accounts" 100000000000
  quiesce
  db_before=$(cpu_s "$db_pid")
  balanced_before=$(cpu_s "$balanced_pid")
  wrk -t1 -c"$connections" -d"${seconds}s" --latency -s bench/wrk/gateway.lua \
    "http://127.0.0.1:$port" -- "none:$accounts" transfer "leg$leg-" > "$work/wrk-$leg.txt"
  db_after=$(cpu_s "$db_pid")
  balanced_after=$(cpu_s "$balanced_pid")
  line=$(result "$work/wrk-$leg.txt")
  [[ -n $line ]] || { echo "wrk gave no result:" >&2; cat "$work/wrk-$leg.txt" >&2; exit 1; }
  ok=$(($(field "$line" requests) - $(field "$line" non2xx)))
  per() { awk -v a="$1" -v b="$2" -v n="$ok" 'BEGIN { printf "%.0f", (b - a) * 1e6 / (n ? n : 1) }'; }
  stored=$(sql "SELECT COUNT(*) FROM ledger.transactions WHERE transaction_id LIKE 'leg$leg-%' AND status = 'committed'" |
           awk 'NR == 2')
  if ((stored < ok || stored > ok + connections)); then
    echo "check FAILED: $ok acknowledged, $stored committed with the leg's ids" >&2
    exit 1
  fi
  printf 'committers=%-2s %s  database CPU/transfer=%sus  balanced CPU/transfer=%sus  (%s acknowledged, %s committed)\n' \
    "$committers" "${line% requests=*}" "$(per "$db_before" "$db_after")" \
    "$(per "$balanced_before" "$balanced_after")" "$ok" "$stored"
  kill -TERM "$balanced_pid"
  wait "$balanced_pid" || true
done
sleep 2  # let the leader seal the last audit records
"$build/balancectl" verify --db "$(url ledger)" | tail -1 | sed 's/^/after the run: /'
