#!/usr/bin/env bash
# One run, one machine: balanced next to nginx returning a fixed answer, under the same
# external load generator (wrk), legs alternated so that drift over the run shows.
#
# Targets:
#   nginx      nginx 1.22, WORKERS worker processes, a fixed JSON answer to every request
#              (the ceiling of an HTTP server on this machine; bench/nginx.conf.in);
#   balanced   balanced on a fresh SQLite file (synchronous=FULL: every commit fsynced),
#              accounts a0..a999;
#   unbatched  the same binary with --batch-operations-max 1 (one durable commit per
#              transfer: the seed's per-request design), on a file of its own.
# Legs (bench/wrk/gateway.lua with `none:1000`, no token; a random account per request):
#   read       GET /accounts/a<i>/balance (cached)
#   transfer   POST /accounts/transactions a<i> -> a<(i+1) % 1000>, amount 1, unique id
# For each leg, the targets in turn, `rounds` times over. Per leg: requests/s, p50, p99,
# p99.9, max, errors, and CPU per request of the serving process and of balanced's
# committer thread (`commit-0`), from /proc. Then the ratios (means over the rounds),
# balanced's per-stage latency (balanced_engine_stage_seconds, from /metrics), and
# `balancectl verify` on both ledgers.
#
# Usage: make bench, or bench/run.sh [seconds per leg, default 10] [connections, default 64]
# WORKERS (default 2) sets both nginx's worker processes and balanced's --threads, so the
# two always serve with the same number of threads.
# Needs build/balanced, build/balancectl, wrk, nginx, curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-64}
accounts=1000
rounds=2
workers=${WORKERS:-2}
build=${BUILD_DIR:-build}
ctl="$build/balancectl"
work=$(mktemp -d /tmp/balanced-bench-XXXXXX)
pids=()
source bench/lib.sh
trap cleanup EXIT

for program in balanced balancectl; do
  [[ -x $build/$program ]] || { echo "no $build/$program: build it first (make build)" >&2; exit 1; }
done
user_ticks() { awk '{ print $14 }' "/proc/$1/stat"; }          # utime alone
thread_ticks() {  # pid name: utime + stime of the process's thread called `name`
  local task
  for task in /proc/"$1"/task/*; do
    [[ $(cat "$task/comm" 2>/dev/null) == "$2" ]] && { awk '{ print $14 + $15 }' "$task/stat"; return; }
  done
  echo 0
}

machine_line
echo "nginx $(nginx -v 2>&1 | sed 's|.*/||'), wrk $(wrk -v 2>&1 | awk 'NR == 1 { print $2 }')"
echo "load: wrk -t1 -c$connections, ${seconds}s per leg, $accounts accounts, a random account per request; $workers nginx workers, $workers balanced threads"
echo

start_nginx "$workers"

start_balanced() {  # name [flags...]: starts balanced on its own file, creates the accounts
  local name=$1 port; shift
  port=$(free_port)
  "$build/balanced" --listen "127.0.0.1:$port" --db "sqlite:$work/$name.db" --log-level warn \
    --threads "$workers" "$@" \
    > "$work/$name.log" 2>&1 & pids+=($!)
  eval "${name}_pid=$! ${name}_port=$port"
  wait_port "$port"
  create_accounts "$port" "$accounts" 100000000000
}
start_balanced balanced
start_balanced unbatched --batch-operations-max 1

declare -A port=([nginx]=$nginx_port [balanced]=$balanced_port [unbatched]=$unbatched_port)
declare -A pid=([nginx]=$nginx_pid [balanced]=$balanced_pid [unbatched]=$unbatched_pid)

# One leg: wrk against a target; CPU of the process (nginx: its workers) and committer.
process_ticks() {  # target [user]: all CPU ticks, or with `user` the user-mode ones
  local ticks=cpu_ticks
  [[ ${2:-} == user ]] && ticks=user_ticks
  if [[ $1 == nginx ]]; then
    local total=0 child
    for child in $(pgrep -P "${pid[nginx]}"); do total=$((total + $($ticks "$child"))); done
    echo "$total"
  else
    $ticks "${pid[$1]}"
  fi
}
run_leg() {  # target read|transfer round
  local target=$1 leg=$2 round=$3 out="$work/$1-$2-$3.txt"
  local p0 p1 u0 u1 c0=0 c1=0
  p0=$(process_ticks "$target")
  u0=$(process_ticks "$target" user)
  [[ $target != nginx ]] && c0=$(thread_ticks "${pid[$target]}" commit-0)
  wrk -t1 -c"$connections" -d"${seconds}s" --latency -s bench/wrk/gateway.lua \
    "http://127.0.0.1:${port[$target]}" -- "none:$accounts" "$leg" "$target-$leg-$round-" > "$out"
  p1=$(process_ticks "$target")
  u1=$(process_ticks "$target" user)
  [[ $target != nginx ]] && c1=$(thread_ticks "${pid[$target]}" commit-0)
  local line requests cpu committer=-
  line=$(result "$out")
  [[ -n $line ]] || { echo "wrk gave no result against $target:" >&2; cat "$out" >&2; exit 1; }
  requests=$(field "$line" requests)
  cpu="process $(per_request_us $((p1 - p0)) "$requests")us (user $(per_request_us $((u1 - u0)) "$requests")us)"
  if [[ $target != nginx ]]; then
    committer=$(per_request_us $((c1 - c0)) "$requests")
    cpu+=", committer ${committer}us"
  fi
  printf '%-24s %s  cpu/request: %s\n' "$target ${leg}s ($round):" "${line% requests=*}" "$cpu"
  grep 'Socket errors' "$out" | sed 's/^ */  /' || true
  echo "$target $leg $round $(field "$line" rps) $(field "$line" p99_ms) $(field "$line" p999_ms)" \
    "$(field "$line" max_ms) $(per_request_us $((p1 - p0)) "$requests") $committer" \
    "$((requests - $(field "$line" non2xx)))" >> "$work/results.txt"
}

# Warm-up, not reported: first connections, caches, the page cache of the ledgers.
for target in nginx balanced unbatched; do
  wrk -t1 -c"$connections" -d2s -s bench/wrk/gateway.lua "http://127.0.0.1:${port[$target]}" \
    -- "none:$accounts" read > /dev/null
done

for round in $(seq "$rounds"); do
  for target in nginx balanced; do run_leg "$target" read "$round"; done
done
for round in $(seq "$rounds"); do
  for target in nginx balanced unbatched; do run_leg "$target" transfer "$round"; done
done

echo
echo "ratios (same run, same wrk load; each figure the mean of its $rounds rounds):"
# results.txt: target leg round rps p99 p999 max cpu_us committer_us 2xx
awk '{ k = $1 SUBSEP $2; rps[k] += $4; p99[k] += $5; p999[k] += $6; cpu[k] += $8; com[k] += $9; n[k]++
       if ($7 > max[k]) max[k] = $7 }
function m(a, t, l) { return a[t, l] / n[t, l] }
END {
  printf "  cached GET balance / nginx:          %.2f   (p99 %.2f vs %.2f ms, p99.9 %.2f vs %.2f ms)\n",
    m(rps, "balanced", "read") / m(rps, "nginx", "read"), m(p99, "balanced", "read"), m(p99, "nginx", "read"),
    m(p999, "balanced", "read"), m(p999, "nginx", "read")
  printf "  durable transfer POST / nginx:       %.2f   (p99 %.2f ms, p99.9 %.2f ms, max %.2f ms)\n",
    m(rps, "balanced", "transfer") / m(rps, "nginx", "transfer"), m(p99, "balanced", "transfer"),
    m(p999, "balanced", "transfer"), max["balanced", "transfer"]
  printf "  batching / one commit per transfer:  %.1fx  (unbatched p99 %.2f ms)\n",
    m(rps, "balanced", "transfer") / m(rps, "unbatched", "transfer"), m(p99, "unbatched", "transfer")
  printf "  CPU per durable transfer:            process %.1f us, committer thread %.1f us (nginx %.1f us per answer)\n",
    m(cpu, "balanced", "transfer"), m(com, "balanced", "transfer"), m(cpu, "nginx", "transfer")
}' "$work/results.txt"

# Where a transfer's time went inside balanced, over the whole run.
echo
echo "balanced per-stage latency over the run (balanced_engine_stage_seconds):"
curl -s "http://127.0.0.1:$balanced_port/metrics" | python3 bench/stages.py | sed "s/^/  /" || true

awk '$2 == "transfer" && $1 != "nginx" { ok += $10 } END { print "\ntransfers acknowledged (2xx) in all legs: " ok }' "$work/results.txt"
for name in balanced unbatched; do
  kill -TERM "${pid[$name]}"; wait "${pid[$name]}" || true
  "$ctl" verify --db "sqlite:$work/$name.db" | tail -1 | sed "s/^/after the run, $name: /"
done
