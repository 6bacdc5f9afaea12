#!/usr/bin/env bash
# One run, one machine: what balance-gateway costs in front of balanced, next to HAProxy
# 2.6 doing the same job, same wrk load.
#
# Three targets on one balanced (fresh SQLite file, accounts a0..a999):
#   direct   balanced itself (the bearer token is sent and ignored);
#   haproxy  HAProxy 2.6 (bench/haproxy.cfg.in): RS256 signature, iss, aud, exp, a request
#            rate per IP and per `sub` (never reached), scope and account, then balanced
#            over kept-alive connections;
#   gateway  balance-gateway with the same key (as a JWKS), issuer, audience and limits.
# HAProxy and the gateway each get the same number of threads.
# 1,000 principals p0..p999, each with its own RS256 token whose only account is a<i>.
# Each request picks one at random (wrk, bench/wrk/gateway.lua) and sends its token:
#   reads      GET /accounts/a<i>/balance
#   transfers  POST /accounts/transactions a<i> -> a<(i+1) % 1000>, amount 1, unique id
# Legs alternate direct, haproxy, gateway, twice over, for reads then for transfers, so
# drift over the run shows. Per leg: requests/s, p50/p99/p99.9/max, errors (non-2xx +
# socket errors), CPU per request of the proxy and of balanced (/proc/PID/stat). Then
# gateway/haproxy and gateway/direct (mean of the two rounds) and `balancectl verify`.
#
# With RATE_LIMIT_STORE=redis the gateway keeps its buckets in a Redis this script starts
# (two Lua decisions per request, through its redis-io thread) instead of in memory;
# HAProxy's stick tables stay local.
#
# Usage: make bench-gateway, or bench/gateway.sh [seconds per leg, default 10] [connections, default 64]
# Needs build/balanced, build/balancectl, build/balance-gateway, wrk, haproxy, openssl,
# curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-64}
principals=1000
threads=2                    # the gateway's --threads and HAProxy's nbthread
rounds=2
build=${BUILD_DIR:-build}
ctl="$build/balancectl"
issuer=https://issuer.bench.invalid
audience=balanced
kid=bench-1
work=$(mktemp -d /tmp/balanced-gateway-bench-XXXXXX)
pids=()
source bench/lib.sh
trap cleanup EXIT

for program in balanced balancectl balance-gateway; do
  [[ -x $build/$program ]] || { echo "no $build/$program: build it first (make build)" >&2; exit 1; }
done
hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }    # utime + stime
http_code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
wait_ready() {  # url [curl arguments]: until it answers 200, at most 30 s
  local url=$1; shift
  for _ in $(seq 300); do [[ $(http_code "$@" "$url") == 200 ]] && return 0; sleep 0.1; done
  echo "no 200 from $url" >&2; return 1
}

machine_line
echo "haproxy $(haproxy -v | awk 'NR == 1 { print $3 }'), wrk $(wrk -v 2>&1 | awk 'NR == 1 { print $2 }'), $threads threads each for haproxy and the gateway"
echo "load: wrk -t1 -c$connections, ${seconds}s per leg, $principals principals (RS256 tokens), a random principal per request"
echo

# Key, tokens, and the same public key as a PEM file for HAProxy.
"$ctl" keygen --alg RS256 --kid "$kid" --key-out "$work/key.pem" --jwks-out "$work/jwks.json" > /dev/null
openssl pkey -in "$work/key.pem" -pubout -out "$work/pubkey.pem"
ttl=$((3600 + 2 * rounds * 3 * seconds))  # outlives the run
"$ctl" token --key "$work/key.pem" --kid "$kid" --scope "balances:read transactions:write" \
  --ttl "$ttl" --iss "$issuer" --aud "$audience" --count "$principals" --sub-prefix p > "$work/tokens.txt"
[[ $(wc -l < "$work/tokens.txt") -eq $principals ]] || { echo "expected $principals tokens" >&2; exit 1; }

# balanced, and its accounts (created directly: through a proxy that needs a scope the
# tokens do not have), over 8 kept-alive connections.
port=$(free_port)
"$build/balanced" --listen "127.0.0.1:$port" --db "sqlite:$work/ledger.db" --log-level warn \
  > "$work/balanced.log" 2>&1 & pids+=($!)
balanced_pid=$!
wait_port "$port"
wait_ready "http://127.0.0.1:$port/readyz"
create_accounts "$port" "$principals" 100000000

# HAProxy.
haproxy_port=$(free_port)
mkdir -p "$work/haproxy"
sed -e "s|@DIR@|$work/haproxy|g" -e "s|@PORT@|$haproxy_port|g" -e "s|@UPSTREAM@|127.0.0.1:$port|g" \
  -e "s|@THREADS@|$threads|g" -e "s|@MAXCONN@|$((connections + 256))|g" -e "s|@PUBKEY@|$work/pubkey.pem|g" \
  -e "s|@ISS@|$issuer|g" -e "s|@AUD@|$audience|g" bench/haproxy.cfg.in > "$work/haproxy/haproxy.cfg"
haproxy -c -f "$work/haproxy/haproxy.cfg" > /dev/null
haproxy -db -f "$work/haproxy/haproxy.cfg" > "$work/haproxy/haproxy.log" 2>&1 & pids+=($!)
haproxy_pid=$!
wait_port "$haproxy_port"

# balance-gateway, its rate limits in memory or (RATE_LIMIT_STORE=redis) in a Redis.
store_flags=()
if [[ ${RATE_LIMIT_STORE:-memory} == redis ]]; then
  redis_port=$(free_port)
  redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no > "$work/redis.log" 2>&1 & pids+=($!)
  wait_port "$redis_port"
  store_flags=(--rate-limit-store "redis://127.0.0.1:$redis_port")
fi
echo "gateway rate limits: ${RATE_LIMIT_STORE:-memory}"
gateway_port=$(free_port)
gateway_admin=$(free_port)
"$build/balance-gateway" --listen "127.0.0.1:$gateway_port" --admin-listen "127.0.0.1:$gateway_admin" \
  --upstream "http://127.0.0.1:$port" --jwks "$work/jwks.json" --jwt-issuer "$issuer" \
  --jwt-audience "$audience" --rate-limit 1000000/s:1000000 --ip-rate-limit 1000000/s:1000000 \
  --threads "$threads" --log-level warn --access-log off "${store_flags[@]}" > "$work/gateway.log" 2>&1 & pids+=($!)
gateway_pid=$!
wait_port "$gateway_port"
wait_port "$gateway_admin"

targets=(direct haproxy gateway)
declare -A url=([direct]="http://127.0.0.1:$port" [haproxy]="http://127.0.0.1:$haproxy_port"
                [gateway]="http://127.0.0.1:$gateway_port")
declare -A proxy_pid=([haproxy]=$haproxy_pid [gateway]=$gateway_pid)
declare -A log=([direct]="$work/balanced.log" [haproxy]="$work/haproxy/haproxy.log"
                [gateway]="$work/gateway.log")

# Each target must serve a valid token and refuse the others (a wrong key file, for one,
# would make HAProxy refuse everything: `haproxy -c` does not load it).
token0=$(head -1 "$work/tokens.txt")
wait_ready "${url[gateway]}/accounts/a0/balance" -H "Authorization: Bearer $token0" \
  || { tail -20 "$work/gateway.log" >&2; exit 1; }
bad_token="${token0%.*}.$(tr 'A-Za-z' 'B-ZAb-za' <<< "${token0##*.}")"   # signature altered
transfer_body() { echo "{\"transactionId\":\"check-$1\",\"sourceAccountNumber\":\"$2\",\"destinationAccountNumber\":\"a1\",\"amount\":1}"; }
for target in "${targets[@]}"; do
  base=${url[$target]}
  read_ok=$(http_code -H "Authorization: Bearer $token0" "$base/accounts/a0/balance")
  post_ok=$(http_code -H "Authorization: Bearer $token0" -H 'Content-Type: application/json' \
    -d "$(transfer_body "$target" a0)" "$base/accounts/transactions")
  line="check, $target: valid token GET $read_ok, POST $post_ok"
  ok=$([[ $read_ok == 2* && $post_ok == 2* ]] && echo yes || echo no)
  if [[ $target != direct ]]; then
    none=$(http_code "$base/accounts/a0/balance")
    bad=$(http_code -H "Authorization: Bearer $bad_token" "$base/accounts/a0/balance")
    other=$(http_code -H "Authorization: Bearer $token0" -H 'Content-Type: application/json' \
      -d "$(transfer_body "$target-other" a2)" "$base/accounts/transactions")
    line+="; no token $none, bad signature $bad, another's account $other"
    [[ $none == 401 && $bad == 401 && $other == 4* ]] || ok=no
  fi
  echo "$line"
  if [[ $ok != yes ]]; then
    echo "$target does not behave as expected; its log:" >&2
    tail -20 "${log[$target]}" >&2
    exit 1
  fi
done
echo

# One leg: wrk against a target, and the CPU the proxy and balanced spent over it.
per_request_us() { awk -v t="$1" -v n="$2" -v hz="$hz" 'BEGIN { printf "%.1f", t * 1e6 / hz / (n ? n : 1) }'; }
run_leg() {  # target read|transfer round
  local target=$1 leg=$2 round=$3 out="$work/$1-$2-$3.txt"
  local pid=${proxy_pid[$target]:-} p0=0 p1=0 b0 b1
  [[ -n $pid ]] && p0=$(cpu_ticks "$pid")
  b0=$(cpu_ticks "$balanced_pid")
  wrk -t1 -c"$connections" -d"${seconds}s" --latency -s bench/wrk/gateway.lua "${url[$target]}" \
    -- "$work/tokens.txt" "$leg" "$target-$leg-$round-" > "$out"
  b1=$(cpu_ticks "$balanced_pid")
  [[ -n $pid ]] && p1=$(cpu_ticks "$pid")
  local line requests proxy_us=- cpu
  line=$(result "$out")
  [[ -n $line ]] || { echo "wrk gave no result against $target:" >&2; cat "$out" >&2; exit 1; }
  requests=$(field "$line" requests)
  cpu="balanced $(per_request_us $((b1 - b0)) "$requests")us"
  if [[ -n $pid ]]; then
    proxy_us=$(per_request_us $((p1 - p0)) "$requests")
    cpu="$target ${proxy_us}us, $cpu"
  fi
  printf '%-23s %s  cpu/request: %s\n' "$target ${leg}s ($round):" "${line% requests=*}" "$cpu"
  grep 'Socket errors' "$out" | sed 's/^ */  /' || true
  echo "$target $leg $round $(field "$line" rps) $(field "$line" p99_ms) $proxy_us" \
    "$((requests - $(field "$line" non2xx)))" >> "$work/results.txt"
}

# Warm-up, not reported: first connections, caches, the page cache of the ledger.
for target in "${targets[@]}"; do
  wrk -t1 -c"$connections" -d2s -s bench/wrk/gateway.lua "${url[$target]}" \
    -- "$work/tokens.txt" read > /dev/null
done

for leg in read transfer; do
  for round in $(seq "$rounds"); do
    for target in "${targets[@]}"; do run_leg "$target" "$leg" "$round"; done
  done
done

echo
echo "ratios (same run, same wrk load; each figure the mean of its $rounds rounds):"
# results.txt: target leg round requests/s p99_ms proxy-CPU-us-per-request 2xx-responses
awk '{ rps[$1, $2] += $4; p99[$1, $2] += $5; cpu[$1, $2] += $6; n[$1, $2]++ }
END {
  split("read transfer", legs, " ")
  for (i = 1; i <= 2; i++) {
    l = legs[i]; d = rps["direct", l] / n["direct", l]
    h = rps["haproxy", l] / n["haproxy", l]; g = rps["gateway", l] / n["gateway", l]
    hp = p99["haproxy", l] / n["haproxy", l]; gp = p99["gateway", l] / n["gateway", l]
    printf "  %-11s requests/s gateway/haproxy %.2f, gateway/direct %.2f (haproxy/direct %.2f)\n", l "s:", g / h, g / d, h / d
    printf "  %-11s p99 gateway %.2f ms, haproxy %.2f ms (gateway/haproxy %.2f)\n", "", gp, hp, gp / hp
    printf "  %-11s CPU/request gateway %.0fus, haproxy %.0fus\n", "", cpu["gateway", l] / n["gateway", l], cpu["haproxy", l] / n["haproxy", l]
  }
}' "$work/results.txt"

# Which store made the gateway's decisions (a Redis that failed would fall back to
# local buckets, and this run would not measure what it says).
curl -s "http://127.0.0.1:$gateway_admin/metrics" |
  awk '/^balance_gateway_rate_limit_(decisions|redis_fallbacks)_total/ { sum[$1 ~ /fallbacks/ ? "fallbacks" : "decisions"] += $2 }
       END { printf "gateway rate-limit decisions: %d, made locally because Redis failed: %d\n", sum["decisions"], sum["fallbacks"] }'

# The ledger after every transfer leg.
awk '$2 == "transfer" { ok += $7 } END { print "transfers acknowledged (2xx) in all legs: " ok }' "$work/results.txt"
kill -TERM "$gateway_pid" "$haproxy_pid" 2>/dev/null || true
kill -TERM "$balanced_pid"; wait "$balanced_pid" || true
"$ctl" verify --db "sqlite:$work/ledger.db" | tail -1 | sed 's/^/after the run: /'
