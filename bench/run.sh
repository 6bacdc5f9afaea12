#!/usr/bin/env bash
# One run, one machine: nginx fixed answer vs balanced, same load generator, ratios.
# Usage: bench/run.sh [seconds per scenario, default 10] [connections, default 64]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-64}
accounts=100000
build=${BUILD_DIR:-build}
ctl="$build/balancectl"
work=$(mktemp -d /tmp/balanced-bench-XXXXXX)
pids=()
source bench/lib.sh
trap cleanup EXIT


machine_line
echo "load: balancectl bench, $connections connections, 1 client thread, ${seconds}s per scenario"
echo

# 1. nginx, fixed answer.
nginx_port=$(free_port)
mkdir -p "$work/nginx"
sed -e "s|@DIR@|$work/nginx|g" -e "s|@PORT@|$nginx_port|g" bench/nginx.conf.in > "$work/nginx/nginx.conf"
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" & pids+=($!)
wait_port "$nginx_port"
run_nginx() {
  "$ctl" bench --target "127.0.0.1:$nginx_port" --connections "$connections" --duration "$seconds" \
    --path /accounts/b00000000-1/balance --quiet > "$work/nginx.txt"
  result "$work/nginx.txt"
}
nginx_line=$(run_nginx)
nginx_rps=$(field "$nginx_line" requests_per_s)
echo "nginx fixed answer (first):    $nginx_line"

# 2. balanced on a fresh SQLite file.
port=$(free_port)
"$build/balanced" --listen "127.0.0.1:$port" --db "sqlite:$work/ledger.db" --log-level warn \
  > "$work/balanced.log" 2>&1 & pids+=($!)
wait_port "$port"
prefix=bench-
"$ctl" bench --target "127.0.0.1:$port" --connections "$connections" --duration "$seconds" \
  --accounts "$accounts" --account-prefix "$prefix" --quiet > "$work/uniform.txt"
uniform_line=$(result "$work/uniform.txt")
echo "balanced transfers, uniform:   $uniform_line"
grep '^check' "$work/uniform.txt" | sed 's/^/  /'

"$ctl" bench --target "127.0.0.1:$port" --connections "$connections" --duration "$seconds" \
  --accounts "$accounts" --account-prefix "$prefix" --no-setup --zipf 1.1 --quiet \
  --verify-db "sqlite:$work/ledger.db" > "$work/zipf.txt"
zipf_line=$(result "$work/zipf.txt")
echo "balanced transfers, Zipf 1.1:  $zipf_line"
grep -E '^check|^verify' "$work/zipf.txt" | sed 's/^/  /'

"$ctl" bench --target "127.0.0.1:$port" --connections "$connections" --duration "$seconds" \
  --accounts "$accounts" --account-prefix "$prefix" --no-setup --read-fraction 1 --quiet \
  > "$work/reads.txt"
reads_line=$(result "$work/reads.txt")
echo "balanced GET balance, cached:  $reads_line"

kill -TERM "${pids[1]}"; wait "${pids[1]}" || true
"$ctl" verify --db "sqlite:$work/ledger.db" | tail -1 | sed 's/^/after the run: /'

# 3. The same service with batching off: one durable commit per transfer, the shape of
# the seed's per-request design, on its own fresh file.
port1=$(free_port)
"$build/balanced" --listen "127.0.0.1:$port1" --db "sqlite:$work/single.db" --log-level warn \
  --batch-operations-max 1 > "$work/single.log" 2>&1 & pids+=($!)
wait_port "$port1"
"$ctl" bench --target "127.0.0.1:$port1" --connections "$connections" --duration "$seconds" \
  --accounts 10000 --quiet > "$work/single.txt"
single_line=$(result "$work/single.txt")
echo "one commit per transfer:       $single_line"
kill -TERM "${pids[2]}"; wait "${pids[2]}" || true

# nginx again: this machine's throughput drifts by tens of percent over minutes, so the
# baseline is the mean of a run before and a run after balanced.
nginx_line2=$(run_nginx)
echo "nginx fixed answer (last):     $nginx_line2"
nginx_rps=$(awk -v a="$nginx_rps" -v b="$(field "$nginx_line2" requests_per_s)" 'BEGIN { printf "%.0f", (a + b) / 2 }')

uniform_rps=$(field "$uniform_line" requests_per_s)
zipf_rps=$(field "$zipf_line" requests_per_s)
reads_rps=$(field "$reads_line" requests_per_s)
single_rps=$(field "$single_line" requests_per_s)
echo
echo "ratios to nginx (same run, same generator; nginx = mean of first and last: $nginx_rps/s):"
awk -v n="$nginx_rps" -v u="$uniform_rps" -v z="$zipf_rps" -v r="$reads_rps" -v s="$single_rps" 'BEGIN {
  printf "  durable transfer POST, uniform:  %.2f   (target >= 0.5)\n", u / n
  printf "  cached GET balance:              %.2f   (target >= 0.7)\n", r / n
  printf "  Zipf 1.1 vs uniform transfers:   %.2f   (target within 20%%: >= 0.8)\n", z / u
  printf "  batching vs one commit each:     %.1fx\n", u / s
}'
