#!/usr/bin/env bash
# The change feed's relays under bench/run.sh's transfer load (issue 21: the AMQP relay
# keeps up with the write rate; webhooks report their rate; the feed and its relays cost
# the transfer path at most 10 %).
# Usage: bench/relay.sh [seconds per leg, default 10] [connections, default 64]
# Targets, each balanced on a fresh SQLite file with accounts a0..a999, legs alternated
# over `rounds`:
#   none      no relay (the baseline: the same binary, the same load);
#   amqp      --events-amqp to a throwaway RabbitMQ node (durable queue bound with '#',
#             persistent messages, publisher confirms);
#   webhook   --webhook-url to nginx answering 200 (one POST per event, signed).
# Load: wrk -t1 -cN bench/wrk/gateway.lua `transfer` (as bench/run.sh). Every 0.5 s the
# script reads /metrics: the last event id committed (balanced_events_last_id) and the
# relay's confirmed position; lag = their difference, in events, and the relay's
# balanced_event_relay_lag_seconds. After the load: how long until the relay caught up.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-64}
accounts=1000
rounds=2
build=${BUILD_DIR:-build}
work=$(mktemp -d /tmp/balanced-bench-XXXXXX)
pids=()
source bench/lib.sh
trap cleanup EXIT

machine_line
echo "load: wrk -t1 -c$connections, ${seconds}s per leg, bench/wrk/gateway.lua transfer, $accounts accounts; $rounds rounds"
start_rabbitmq
start_nginx 1
echo "rabbitmq $(dpkg-query -W -f='${Version}' rabbitmq-server), nginx as the webhook receiver"

metric() {  # port name: a metric's value (the first sample of that name), 0 when absent
  curl -s "localhost:$1/metrics" | awk -v n="$2" '!found && index($0, n) == 1 { printf "%.3f\n", $2; found = 1 } END { if (!found) print 0 }'
}
start_target() {  # name [flags...]
  local name=$1 port; shift
  port=$(free_port)
  "$build/balanced" --listen "127.0.0.1:$port" --db "sqlite:$work/$name.db" --log-level warn "$@" \
    > "$work/$name.log" 2>&1 & pids+=($!)
  eval "${name}_pid=$! ${name}_port=$port"
  wait_port "$port"
  create_accounts "$port" "$accounts" 100000000000
}
echo 'bench-secret' > "$work/webhook-secret"
start_target none
start_target amqp --events-amqp "$amqp_url" --events-amqp-password-file "$work/amqp-password"
start_target webhook --webhook-url "http://127.0.0.1:$nginx_port/hooks" --webhook-secret-file "$work/webhook-secret"
# The exchange exists once the relay has connected: bind the durable queue to it (the
# consumer takes one message and leaves; the binding stays, the queue fills on disk).
for _ in $(seq 100); do [[ $(metric "$amqp_port" 'balanced_event_relay_position{relay="amqp"}') != 0 ]] && break; sleep 0.1; done
timeout 120 amqp-consume --url="amqp://guest:guest@127.0.0.1:$amqp_port/%2f" -q ledger-feed -e balanced.events \
  -r '#' -c 1 cat > /dev/null 2>&1 & pids+=($!)

declare -A port=([none]=$none_port [amqp]=$amqp_port [webhook]=$webhook_port)
declare -A pid=([none]=$none_pid [amqp]=$amqp_pid [webhook]=$webhook_pid)
declare -A relay=([none]="" [amqp]=amqp [webhook]=webhook)
# The receiving side's CPU, on the same two cores: the broker's VM, nginx's process.
children_ticks() { local total=0 child; for child in $(pgrep -P "$1"); do total=$((total + $(cpu_ticks "$child"))); done; echo "$total"; }
declare -A receiver_ticks=([none]="echo 0" [amqp]="children_ticks $rabbitmq_pid" [webhook]="children_ticks $nginx_pid")

run_leg() {  # target round
  local target=$1 round=$2 out="$work/$1-$2.txt" samples="$work/$1-$2.samples"
  local c0 c1 sampler
  c0=$(cpu_ticks "${pid[$target]}")
  local r0 r1
  r0=$(${receiver_ticks[$target]})
  : > "$samples"
  if [[ -n ${relay[$target]} ]]; then
    ( while :; do
        echo "$(date +%s.%N) $(metric "${port[$target]}" balanced_events_last_id) $(metric "${port[$target]}" "balanced_event_relay_position{relay=\"${relay[$target]}\"}") $(metric "${port[$target]}" "balanced_event_relay_lag_seconds{relay=\"${relay[$target]}\"}")" >> "$samples"
        sleep 0.5
      done ) & sampler=$!
  fi
  wrk -t1 -c"$connections" -d"${seconds}s" --latency -s bench/wrk/gateway.lua \
    "http://127.0.0.1:${port[$target]}" -- "none:$accounts" transfer "$target-$round-" > "$out"
  c1=$(cpu_ticks "${pid[$target]}")
  r1=$(${receiver_ticks[$target]})
  local line requests extra=""
  line=$(result "$out")
  requests=$(field "$line" requests)
  if [[ -n ${relay[$target]} ]]; then
    kill "$sampler"; wait "$sampler" 2>/dev/null || true
    # Catch-up: from the end of the load until the relay confirmed the last event.
    local head position t0 waited
    head=$(metric "${port[$target]}" balanced_events_last_id)
    t0=$(date +%s.%N)
    for _ in $(seq 600); do  # at most 30 s
      position=$(metric "${port[$target]}" "balanced_event_relay_position{relay=\"${relay[$target]}\"}")
      [[ ${position%.*} -ge ${head%.*} ]] && break
      sleep 0.05
    done
    waited=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
    # Delivered per second during the load: the position's rise over the samples' span.
    extra=$(awk '{ lag = $2 - $3; if (lag > max) max = lag; if ($4 > maxs) maxs = $4; sum += lag; n++
                   if (n == 1) { t0 = $1; first = $3 } t1 = $1; last = $3 }
      END { printf "relayed %d events/s; lag max %d events (mean %d), max %.2fs; ",
            (t1 > t0 ? (last - first) / (t1 - t0) : 0), max, (n ? sum / n : 0), maxs }' "$samples")
    if [[ ${position%.*} -ge ${head%.*} ]]; then
      extra+="caught up ${waited}s after the load"
    else
      extra+="still $((${head%.*} - ${position%.*})) events behind ${waited}s after the load"
    fi
  fi
  printf '%-18s %s  cpu/transfer: %sus (receiver %sus)  %s\n' "$target ($round):" "${line% requests=*}" \
    "$(per_request_us $((c1 - c0)) "$requests")" "$(per_request_us $((r1 - r0)) "$requests")" "$extra"
  echo "$target $round $(field "$line" rps) $(field "$line" p99_ms) $(per_request_us $((c1 - c0)) "$requests")" >> "$work/results.txt"
}

for target in none amqp webhook; do  # warm-up, not reported
  wrk -t1 -c"$connections" -d2s -s bench/wrk/gateway.lua "http://127.0.0.1:${port[$target]}" \
    -- "none:$accounts" transfer "warm-$target-" > /dev/null
done
for round in $(seq "$rounds"); do
  for target in none amqp webhook; do run_leg "$target" "$round"; done
done
echo
echo "ratios (same run; means over $rounds rounds):"
awk '{ rps[$1] += $3; p99[$1] += $4; cpu[$1] += $5; n[$1]++ }
END {
  for (t in rps) { rps[t] /= n[t]; p99[t] /= n[t]; cpu[t] /= n[t] }
  printf "  transfers/s with the AMQP relay / without:    %.3f  (p99 %.2f vs %.2f ms; cpu/transfer %.1f vs %.1f us)\n",
    rps["amqp"] / rps["none"], p99["amqp"], p99["none"], cpu["amqp"], cpu["none"]
  printf "  transfers/s with the webhook relay / without: %.3f  (p99 %.2f vs %.2f ms; cpu/transfer %.1f vs %.1f us)\n",
    rps["webhook"] / rps["none"], p99["webhook"], p99["none"], cpu["webhook"], cpu["none"]
}' "$work/results.txt"
# The webhook relay's own rate: events it confirmed per second, over the whole run.
echo "  webhook deliveries: $(metric "$webhook_port" 'balanced_events_relayed_total{relay="webhook"}') events confirmed in all"
