#!/usr/bin/env bash
# Durable transfers through POST /accounts/transactions/batch, driven by wrk.
# Usage: bench/batch.sh [seconds per leg, default 10] [connections, default 4]
# One balanced on a fresh SQLite file (synchronous=FULL), 10 accounts; wrk -t1 with
# bench/wrk/batch.lua posts batches of 1,000, 4,000 and 8,190 transfers with unique ids;
# transfers/s = requests/s x batch size (every item commits: the accounts never run dry).
# Each leg prints p50/p99/p99.9/max of whole batches and balanced's CPU per transfer;
# `balancectl verify` runs at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-4}
build=${BUILD_DIR:-build}
work=$(mktemp -d /tmp/balanced-bench-XXXXXX)
pids=()
source bench/lib.sh
trap cleanup EXIT

machine_line
echo "load: wrk -t1 -c$connections, ${seconds}s per leg, bench/wrk/batch.lua"
start_balanced_sqlite
port=$balanced_port
for a in $(seq 0 9); do
  curl -s -X POST "localhost:$port/accounts" -H 'Content-Type: application/json' \
       -d "{\"accountNumber\":\"acc$a\",\"initialBalance\":1000000000000}" > /dev/null
done
ticks_per_s=$(getconf CLK_TCK)
for size in 1000 4000 8190; do
  before=$(cpu_ticks "$balanced_pid")
  line=$(BATCH=$size TAG="b$size" wrk -t1 -c"$connections" -d"${seconds}s" --latency -s bench/wrk/batch.lua \
         "http://127.0.0.1:$port" | result /dev/stdin)
  after=$(cpu_ticks "$balanced_pid")
  rate=$(field "$line" transfers_per_s)
  cpu_us=$(awk -v t=$((after - before)) -v hz="$ticks_per_s" -v r="$rate" -v s="$seconds" \
           'BEGIN { printf "%.1f", t / hz * 1e6 / (r * s) }')
  echo "batch of $size: $line  cpu/transfer: balanced ${cpu_us}us"
done
kill "$balanced_pid"; wait "$balanced_pid" 2>/dev/null || true
echo "after the run: $("$build/balancectl" verify --db "sqlite:$work/ledger.db" | tail -1)"
