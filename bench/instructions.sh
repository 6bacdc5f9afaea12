#!/usr/bin/env bash
# Instructions per transfer, by thread, where wall-clock legs cannot tell a few percent
# apart: balanced under valgrind's callgrind (--separate-threads), fed batches of
# BATCH (default 64) transfers over 1,000 accounts acc0..acc999 through
# POST /accounts/transactions/batch by one connection (wrk -c1, bench/wrk/batch.lua), so
# that every commit holds exactly one request's batch in any binary. Instructions are
# divided by the transfers committed (counted in the ledger afterwards). Under
# valgrind SHA-256 runs without the CPU's SHA extensions: the materializer's audit chain
# weighs more here than on the machine.
#
# Usage: bench/instructions.sh [BALANCED, default build/balanced] [seconds, default 8]
# Needs valgrind (callgrind_control, callgrind_annotate), wrk, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-build/balanced}
[[ $binary == /* ]] || binary=$PWD/$binary
seconds=${2:-8}
batch=${BATCH:-64}
work=$(mktemp -d /tmp/balanced-instructions-XXXXXX)
pids=()
source bench/lib.sh
trap cleanup EXIT
[[ -x $binary ]] || { echo "no $binary: build it first" >&2; exit 1; }
machine_line
echo "binary: $binary; batches of $batch transfers, wrk -t1 -c1, ${seconds}s under callgrind"
port=$(free_port)
# Counting starts once the accounts exist (callgrind_control -i on): their creation is
# not the transfers'.
valgrind --tool=callgrind --separate-threads=yes --instr-atstart=no --callgrind-out-file="$work/cg.out" \
  "$binary" --listen "127.0.0.1:$port" --db "sqlite:$work/ledger.db" --threads 1 --log-level warn \
  > "$work/balanced.log" 2>&1 & pids+=($!)
balanced_pid=$!
for _ in $(seq 600); do (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.2; done
python3 - "$port" <<'PY'
import http.client, json, sys
connection = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=60)
for i in range(1000):
    body = json.dumps({"accountNumber": f"acc{i}", "initialBalance": 10**12})
    connection.request("POST", "/accounts", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    if response.status != 201:
        raise SystemExit(f"POST /accounts acc{i}: HTTP {response.status}")
PY
callgrind_control -i on "$balanced_pid" > /dev/null 2>&1
TAG=ibench BATCH=$batch ACCOUNTS=1000 wrk -t1 -c1 -d"${seconds}s" -s bench/wrk/batch.lua "http://127.0.0.1:$port" > "$work/wrk.txt"
grep RESULT "$work/wrk.txt"
sleep 3  # the materializer's last chunks
kill -TERM "$balanced_pid"
wait "$balanced_pid" || true
# The transfers the run committed, from the ledger (any release's: no column but the id).
transfers=$(python3 - "$work/ledger.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
print(db.execute("SELECT count(*) FROM transactions WHERE transaction_id LIKE 'ibench-%'").fetchone()[0])
PY
)
((transfers > 0)) || { echo "no transfer was committed" >&2; exit 1; }
echo "transfers committed: $transfers"
echo "instructions per transfer, by thread (threads of under 5 million in all left out):"
all=0
for file in "$work"/cg.out-*; do
  total=$(awk '/^totals:/ { print $2 }' "$file")
  ((total >= 5000000)) || continue
  name=$(callgrind_annotate --inclusive=yes "$file" 2>/dev/null | grep -o \
    -e 'Materializer::run' -e 'Engine::run' -e 'io_context::run' -e 'Checkpointer::run' | awk 'NR == 1' || true)
  printf '  %-22s %8.0f\n' "${name:-thread ${file##*-}}" "$(awk -v a="$total" -v t="$transfers" 'BEGIN { print a / t }')"
  all=$((all + total))
done
printf '  %-22s %8.0f\n' "all" "$(awk -v a="$all" -v t="$transfers" 'BEGIN { print a / t }')"
