#!/usr/bin/env bash
# The ledger operations of DESIGN.md section 10 next to a transfer, on one balanced, with
# the same load: issue 20 asks for deposits and refunds at transfer speed, and hold +
# capture pairs at 0.45x the transfers per second or more with a p99 at most twice theirs.
#
# One balanced on a fresh SQLite file (synchronous=FULL), accounts a0..a999. Legs
# (bench/wrk/gateway.lua, wrk -t1 -cCONNECTIONS, SECONDS each, a random account per
# request, unique ids): durable transfer, deposit, withdrawal, hold + capture (a hold,
# then the capture of one placed earlier: two requests a pair), refund (one unit of a
# large transfer into the account), `rounds` times over, each round starting one kind
# further on, so that drift and the growing ledger fall on all alike. Per leg: requests/s, p50, p99, p99.9, max and CPU per operation of
# the process (/proc). Then each kind's mean over the rounds against the transfer's, and
# `balancectl verify`.
#
# Usage: bench/ledger.sh [seconds, default 10] [connections, default 64] [rounds, default 3]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-64}
rounds=${3:-3}
accounts=1000
workers=${WORKERS:-2}
build=${BUILD_DIR:-build}
work=$(mktemp -d /tmp/balanced-ledger-bench-XXXXXX)
pids=()
source bench/lib.sh
trap cleanup EXIT
for program in balanced balancectl; do
  [[ -x $build/$program ]] || { echo "no $build/$program: build it first (make build)" >&2; exit 1; }
done

machine_line
echo "load: wrk -t1 -c$connections, ${seconds}s per leg, $rounds rounds, $accounts accounts; balanced --threads $workers"
echo

port=$(free_port)
"$build/balanced" --listen "127.0.0.1:$port" --db "sqlite:$work/ledger.db" --log-level warn --threads "$workers" \
  > "$work/balanced.log" 2>&1 & pids+=($!)
pid=$!
wait_port "$port"
create_accounts "$port" "$accounts" 100000000000
# What the refunds give back: orig-a<i>, a large transfer from a<(i+1) % N> into a<i>.
python3 - "$port" "$accounts" <<'EOF'
import http.client, json, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
items = [{"transactionId": f"orig-a{i}", "sourceAccountNumber": f"a{(i + 1) % n}",
          "destinationAccountNumber": f"a{i}", "amount": 10_000_000} for i in range(n)]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
conn.request("POST", "/accounts/transactions/batch", json.dumps({"transfers": items}), {"Content-Type": "application/json"})
answer = json.loads(conn.getresponse().read())
if answer.get("committed") != n:
    raise SystemExit(f"the refunds' originals: {answer}")
EOF

leg() {  # mode round
  local out="$work/$1-$2.txt" t0 t1 line requests cpu
  t0=$(cpu_ticks "$pid")
  wrk -t1 -c"$connections" -d"${seconds}s" --latency -s bench/wrk/gateway.lua \
    "http://127.0.0.1:$port" -- "none:$accounts" "$1" "$1-$2-" > "$out"
  t1=$(cpu_ticks "$pid")
  line=$(result "$out")
  [[ -n $line ]] || { echo "wrk gave no result for $1:" >&2; cat "$out" >&2; exit 1; }
  requests=$(field "$line" requests)
  cpu=$(per_request_us $((t1 - t0)) "$requests")
  printf '  %-11s %s  cpu/op %sus\n' "$1:" "${line% requests=*}" "$cpu"
  echo "$1 $2 $(field "$line" rps) $cpu $(field "$line" p99_ms) $(field "$line" non2xx)" >> "$work/results.txt"
}

# Warm-up, not reported.
modes="transfer deposit withdrawal holdcapture refund"
for mode in $modes; do
  wrk -t1 -c"$connections" -d2s -s bench/wrk/gateway.lua "http://127.0.0.1:$port" -- "none:$accounts" "$mode" "warm-$mode-" > /dev/null
done
for round in $(seq "$rounds"); do
  echo "round $round:"
  # Each round starts one kind further on, so that no kind always runs on the largest
  # ledger of its round (p99 grows with the ledger under sustained load).
  read -r -a order <<< "$modes"
  for k in "${!order[@]}"; do leg "${order[$(((k + round - 1) % ${#order[@]}))]}" "$round"; done
done

echo
echo "each kind against the transfer (means over $rounds rounds):"
# results.txt: mode round rps cpu_us p99_ms non2xx
awk '{ rps[$1] += $3; cpu[$1] += $4; p99[$1] += $5; bad += $6; n[$1]++ }
END {
  for (m in rps) { rps[m] /= n[m]; cpu[m] /= n[m]; p99[m] /= n[m] }
  printf "  transfer:    %.0f/s, CPU %.1f us, p99 %.2f ms\n", rps["transfer"], cpu["transfer"], p99["transfer"]
  split("deposit withdrawal refund", kinds, " ")
  for (k = 1; k <= 3; k++) {
    m = kinds[k]
    printf "  %-12s %.0f/s (%.2fx the transfer), CPU %.1f us (%.2fx), p99 %.2f ms (%.2fx)\n", m ":", rps[m], rps[m] / rps["transfer"],
      cpu[m], cpu[m] / cpu["transfer"], p99[m], p99[m] / p99["transfer"]
  }
  m = "holdcapture"
  printf "  hold+capture: %.0f pairs/s (%.2fx the transfers/s), CPU %.1f us a request (%.2fx), p99 %.2f ms (%.2fx)\n",
    rps[m] / 2, rps[m] / 2 / rps["transfer"], cpu[m], cpu[m] / cpu["transfer"], p99[m], p99[m] / p99["transfer"]
  printf "  non-2xx answers in all legs: %d\n", bad
}' "$work/results.txt"

kill -TERM "$pid"; wait "$pid" || true
"$build/balancectl" verify --db "sqlite:$work/ledger.db" | tail -1 | sed "s/^/after the run: /"
