#!/usr/bin/env bash
# This build against the previous binary, on the transfer path, in alternated pairs: the
# check that a change did not make durable transfers slower (issue 20 asks for transfers/nginx
# and CPU per transfer within 3 % of the previous binary's, over at least 8 pairs).
#
# Targets, each on its own fresh SQLite file (synchronous=FULL), accounts a0..a999:
#   current    $BUILD_DIR/balanced (this tree)
#   previous   PREVIOUS, a balanced built from an earlier commit
#   nginx      a fixed answer, WORKERS workers (the machine's ceiling; bench/nginx.conf.in)
# Pair i runs a transfer leg (bench/wrk/gateway.lua, wrk -t1 -cCONNECTIONS, SECONDS) on
# each, in the order nginx, current, previous on odd pairs and nginx, previous, current on
# even ones, so that drift over the run falls on both alike. Per pair: requests/s, p50,
# p99, p99.9, max and CPU per transfer (the whole process, from /proc) of each, and the
# ratios current/previous. Then the mean of the ratios with their spread (min..max over
# the pairs), and `balancectl verify` on both ledgers.
#
# CURRENT_ARGS and PREVIOUS_ARGS, when set, are more flags for the one or the other (the
# same binary twice with and without a flag: the flag's cost, e.g. --risk-rules).
#
# Usage: bench/previous.sh PREVIOUS [pairs, default 8] [seconds, default 10] [connections, default 64]
#   git worktree add /tmp/prev <commit> && cmake -S /tmp/prev -B /tmp/prev/build -G Ninja \
#     -DCMAKE_BUILD_TYPE=Release && cmake --build /tmp/prev/build --target balanced
#   bench/previous.sh /tmp/prev/build/balanced
set -euo pipefail
cd "$(dirname "$0")/.."
previous=${1:?usage: bench/previous.sh PREVIOUS_BALANCED [pairs] [seconds] [connections]}
pairs=${2:-8}
seconds=${3:-10}
connections=${4:-64}
accounts=1000
workers=${WORKERS:-2}
build=${BUILD_DIR:-build}
work=$(mktemp -d /tmp/balanced-previous-XXXXXX)
pids=()
source bench/lib.sh
trap cleanup EXIT
for program in "$build/balanced" "$build/balancectl" "$previous"; do
  [[ -x $program ]] || { echo "no $program: build it first" >&2; exit 1; }
done

machine_line
echo "previous: $previous ($(stat -c %y "$previous" | cut -d. -f1))${PREVIOUS_ARGS:+ $PREVIOUS_ARGS}"
[[ -z ${CURRENT_ARGS:-} ]] || echo "current: $build/balanced $CURRENT_ARGS"
echo "load: wrk -t1 -c$connections, ${seconds}s per leg, $pairs pairs, $accounts accounts; $workers nginx workers, $workers balanced threads"
echo

start_nginx "$workers"

declare -A port pid
port[nginx]=$nginx_port
pid[nginx]=$nginx_pid
start() {  # name binary [flags...]
  local p name=$1 binary=$2
  shift 2
  p=$(free_port)
  "$binary" --listen "127.0.0.1:$p" --db "sqlite:$work/$name.db" --log-level warn --threads "$workers" "$@" \
    > "$work/$name.log" 2>&1 & pids+=($!)
  port[$name]=$p
  pid[$name]=$!
  wait_port "$p"
  create_accounts "$p" "$accounts" 100000000000
}
# shellcheck disable=SC2086  # the flags are words
start current "$build/balanced" ${CURRENT_ARGS:-}
# shellcheck disable=SC2086
start previous "$previous" ${PREVIOUS_ARGS:-}

process_ticks() {  # target: CPU ticks of the process (nginx: its workers)
  if [[ $1 == nginx ]]; then
    local total=0 child
    for child in $(pgrep -P "${pid[nginx]}"); do total=$((total + $(cpu_ticks "$child"))); done
    echo "$total"
  else
    cpu_ticks "${pid[$1]}"
  fi
}
leg() {  # target pair
  local out="$work/$1-$2.txt" t0 t1 line requests
  t0=$(process_ticks "$1")
  wrk -t1 -c"$connections" -d"${seconds}s" --latency -s bench/wrk/gateway.lua \
    "http://127.0.0.1:${port[$1]}" -- "none:$accounts" transfer "$1-$2-" > "$out"
  t1=$(process_ticks "$1")
  line=$(result "$out")
  [[ -n $line ]] || { echo "wrk gave no result against $1:" >&2; cat "$out" >&2; exit 1; }
  requests=$(field "$line" requests)
  local cpu
  cpu=$(per_request_us $((t1 - t0)) "$requests")
  printf '  %-9s %s  cpu/transfer %sus\n' "$1:" "${line% requests=*}" "$cpu"
  echo "$2 $1 $(field "$line" rps) $cpu $(field "$line" p99_ms) $(field "$line" non2xx)" >> "$work/results.txt"
}

# Warm-up, not reported.
for target in nginx current previous; do
  wrk -t1 -c"$connections" -d2s -s bench/wrk/gateway.lua "http://127.0.0.1:${port[$target]}" \
    -- "none:$accounts" transfer "warm-$target-" > /dev/null
done

for pair in $(seq "$pairs"); do
  echo "pair $pair:"
  if ((pair % 2)); then order="nginx current previous"; else order="nginx previous current"; fi
  for target in $order; do leg "$target" "$pair"; done
done

echo
echo "current / previous over $pairs alternated pairs (mean, and min..max of the pairs):"
# results.txt: pair target rps cpu_us p99_ms non2xx
awk -v width=34 "$pairs_stat_awk"'{ rps[$1, $2] = $3; cpu[$1, $2] = $4; p99[$1, $2] = $5; bad += ($2 != "nginx") * $6; if ($1 > n) n = $1 }
END {
  for (i = 1; i <= n; i++) {
    t[i] = rps[i, "current"] / rps[i, "previous"]
    c[i] = cpu[i, "current"] / cpu[i, "previous"]
    p[i] = p99[i, "current"] / p99[i, "previous"]
    cn[i] = rps[i, "current"] / rps[i, "nginx"]
    pn[i] = rps[i, "previous"] / rps[i, "nginx"]
  }
  stat("transfers/s, current/previous:", t)
  stat("CPU per transfer, current/previous:", c)
  stat("p99, current/previous:", p)
  stat("transfers / nginx, current:", cn)
  stat("transfers / nginx, previous:", pn)
  printf "  non-2xx answers in all legs: %d\n", bad
}' "$work/results.txt"

for name in current previous; do
  kill -TERM "${pid[$name]}"; wait "${pid[$name]}" || true
  # The previous binary's ledger may be of an older schema: this build's verify reads it
  # once migrated (what an upgrade would do first).
  "$build/balancectl" migrate --db "sqlite:$work/$name.db" > /dev/null
  "$build/balancectl" verify --db "sqlite:$work/$name.db" | tail -1 | sed "s/^/after the run, $name: /"
done
