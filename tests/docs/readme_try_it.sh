#!/usr/bin/env bash
# Runs every block of shell under the README's "Try it" heading, as written (the port
# moved to a free one), against a balanced it starts on a fresh SQLite file, and checks
# that no command got a problem answer and the last read is alice's balance after the
# transfers, the deposit and withdrawal, the hold's capture and the refund.
# Usage: tests/docs/readme_try_it.sh BUILD_DIR
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:?build dir}" && pwd)
work=$(mktemp -d /tmp/balanced-try-it-XXXXXX)
pid=""
cleanup() {
  [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (echo > /dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
fail() { echo "FAILED: $*"; echo "0 passed, 1 failed"; exit 1; }

# Every sh block between "## Try it" and the next "## " heading, in order.
blocks=$(awk '/^## / {in_section = ($0 ~ /^## Try it/)} in_section && /^```sh/ {in_block=1; next}
              in_block && /^```/ {in_block=0; next} in_block {print}' "$repo/README.md")
[[ $(grep -c '/holds/h-1/capture' <<< "$blocks") -eq 1 ]] || fail "no hold capture under '## Try it' in README.md"
[[ $(grep -c '/refunds' <<< "$blocks") -eq 1 ]] || fail "no refund under '## Try it' in README.md"

api=$(free_port)
"$build/balanced" --listen "127.0.0.1:$api" --db "sqlite:$work/ledger.db" --log-level warn \
  > "$work/balanced.log" 2>&1 & pid=$!
wait_port "$api" || { cat "$work/balanced.log"; fail "balanced did not start"; }
script=$(sed -e "s/localhost:8080/localhost:$api/g" <<< "$blocks")
output=$(cd "$work" && bash -e -c "$script" 2> "$work/stderr.log") ||
  { cat "$work/stderr.log"; fail "the README's commands failed"; }
if grep -q '"type":"/problems/' <<< "$output"; then echo "$output"; fail "a command got a problem answer"; fi
grep -q '"status":"captured"' <<< "$output" || { echo "$output"; fail "the hold was not captured"; }
grep -q '"refundOf":"cap-1"' <<< "$output" || { echo "$output"; fail "the capture was not refunded"; }
# curl prints no newline after a body: the last read is the last balance in the output.
balance=$(grep -o '"balance":[0-9-]*' <<< "$output" | tail -1 || true)
pending=$(grep -o '"pendingDebits":[0-9-]*' <<< "$output" | tail -1 || true)
[[ "$balance" == '"balance":6240' && "$pending" == '"pendingDebits":0' ]] ||
  { echo "$output"; fail "expected alice's balance 6240 with nothing pending, got $balance $pending"; }
echo "README try it: every command answered, the hold captured and the capture refunded"
echo "1 passed, 0 failed"
