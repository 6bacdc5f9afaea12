#!/usr/bin/env bash
# Runs every block of shell under the README's "Try it" heading, as written (the port
# moved to a free one), against a balanced it starts on a fresh SQLite file, and checks
# that no command got a problem answer, the change feed showed the first events, and the
# last read is alice's balance after the transfers, the deposit and withdrawal, the hold's
# capture and the refund, and today's statement closes at that balance.
# Usage: tests/docs/readme_try_it.sh BUILD_DIR
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# Every sh block between "## Try it" and the next "## " heading, in order.
blocks=$(awk '/^## / {in_section = ($0 ~ /^## Try it/)} in_section && /^```sh/ {in_block=1; next}
              in_block && /^```/ {in_block=0; next} in_block {print}' "$repo/README.md")
[[ $(grep -c '/holds/h-1/capture' <<< "$blocks") -eq 1 ]] || fail "no hold capture under '## Try it' in README.md"
[[ $(grep -c '/refunds' <<< "$blocks") -eq 1 ]] || fail "no refund under '## Try it' in README.md"

api=$(free_port)
"$build/balanced" --listen "127.0.0.1:$api" --db "sqlite:$work/ledger.db" --log-level warn \
  > "$work/balanced.log" 2>&1 & pids+=($!)
wait_port "$api" || { cat "$work/balanced.log"; fail "balanced did not start"; }
script=$(sed -e "s/localhost:8080/localhost:$api/g" <<< "$blocks")
output=$(cd "$work" && bash -e -c "$script" 2> "$work/stderr.log") ||
  { cat "$work/stderr.log"; fail "the README's commands failed"; }
if grep -q '"type":"/problems/' <<< "$output"; then echo "$output"; fail "a command got a problem answer"; fi
grep -q '"type":"account.created"' <<< "$output" || { echo "$output"; fail "the change feed showed no account.created"; }
grep -q '"status":"captured"' <<< "$output" || { echo "$output"; fail "the hold was not captured"; }
grep -q '"refundOf":"cap-1"' <<< "$output" || { echo "$output"; fail "the capture was not refunded"; }
grep -q '"closingBalance":6240' <<< "$output" || { echo "$output"; fail "today's statement does not close at alice's balance"; }
# curl prints no newline after a body: the last read is the last balance in the output.
balance=$(grep -o '"balance":[0-9-]*' <<< "$output" | tail -1 || true)
pending=$(grep -o '"pendingDebits":[0-9-]*' <<< "$output" | tail -1 || true)
[[ "$balance" == '"balance":6240' && "$pending" == '"pendingDebits":0' ]] ||
  { echo "$output"; fail "expected alice's balance 6240 with nothing pending, got $balance $pending"; }
echo "README try it: every command answered, the hold captured and the capture refunded"
echo "1 passed, 0 failed"
