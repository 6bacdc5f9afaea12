#!/usr/bin/env bash
# Runs the README's "secure path" commands as written (ports moved to free ones) against a
# balanced it starts, and checks that the last one reads alice's balance through the
# gateway. Usage: tests/docs/readme_secure_path.sh BUILD_DIR
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# The block of shell after the section's heading, as the README shows it.
block=$(awk '/^## The secure path/ {in_section=1} in_section && /^```sh/ {in_block=1; next}
             in_block && /^```/ {exit} in_block {print}' "$repo/README.md")
[[ -n "$block" ]] || fail "no sh block under '## The secure path' in README.md"
[[ $(grep -c '^build/\|^TOKEN=\|^curl' <<< "$block") -eq 4 ]] || fail "the section should hold four commands"

api=$(free_port); public=$(free_port); admin=$(free_port)
mkdir -p "$work/data"
ln -s "$build" "$work/build"
"$build/balanced" --listen "127.0.0.1:$api" --db "sqlite:$work/data/ledger.db" --log-level warn \
  > "$work/balanced.log" 2>&1 & pids+=($!)
wait_port "$api" || fail "balanced did not start"
curl -s -X POST "localhost:$api/accounts" -H 'Content-Type: application/json' \
     -d '{"accountNumber":"alice","initialBalance":10000}' > /dev/null

# Same commands, on free ports; wait for the gateway the README starts in the background.
script=$(sed -e "s/8080/$api/g" -e "s/8443/$public/g" <<< "$block" |
         sed -e 's/&$/> gateway.log 2>\&1 \&/' -e "/&\$/a echo \$! > gateway.pid; for _ in \$(seq 200); do (echo > /dev/tcp/127.0.0.1/$public) 2>/dev/null && break; sleep 0.05; done")
output=$(cd "$work" && BALANCE_GATEWAY_ADMIN_LISTEN="127.0.0.1:$admin" bash -e -c "$script" 2> "$work/stderr.log") ||
  { cat "$work/stderr.log"; fail "the README's commands failed"; }
[[ -f "$work/gateway.pid" ]] && pids+=("$(cat "$work/gateway.pid")")
balance=$(grep -o '"balance":[0-9-]*' <<< "$output" | tail -1 || true)
[[ "$balance" == '"balance":10000' ]] || { echo "$output"; fail "expected alice's balance through the gateway"; }
echo "README secure path: alice's balance read through the gateway with a minted token"
echo "1 passed, 0 failed"
