#!/usr/bin/env bash
# Failover cycles under load, through the gateway (DESIGN.md section 12; docs/BENCHMARKS.md
# "Failover"). A MariaDB primary and a semi-synchronous replica (AFTER_SYNC, GTID,
# sync_binlog=1) behind our fault proxy (the endpoint that moves), three balanced replicas,
# one balance-gateway, and bench/idempotent_client.py posting transfers with their own ids
# (sent again after a 5xx or a lost answer). CYCLES times each:
#   promote    the primary killed -9, the replica promoted (scripts/promote-mariadb-replica.sh),
#              the endpoint moved; a fresh replica of the new primary is built for the next
#              cycle. RTO: from the kill to the first write acknowledged that was sent after it.
#   blackhole  the database's path blackholed for 10 s: client-visible codes (goal: 503 only);
#              balanced's RSS before, during and after.
#   rolling    the three balanced replicas restarted one by one (SIGTERM, --drain-delay-ms):
#              client-visible errors (goal 0).
#   kill       one balanced replica killed -9 and started again: client-visible errors (goal 0).
#   outages    once each, a minute: the database blackholed, then Redis (the cache, behind a
#              second fault proxy) blackholed: client-visible codes and balanced's RSS before,
#              during and after (goal: bounded, no restart; Redis never fails a transfer).
# Then every acknowledged transfer is looked up (goal: none lost) and `balancectl verify` run.
# Usage: bench/failover.sh [CYCLES]        (default 5; about 4 minutes at 5)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$repo/build}
cycles=${1:-5}
export PATH=$PATH:/usr/sbin:/sbin
work=$(mktemp -d /tmp/balanced-failover-XXXXXX)
pids=()
source "$repo/bench/lib.sh"
trap cleanup EXIT
for binary in balanced balance-gateway balancectl tests/fault_proxy; do
  [[ -x "$build/$binary" ]] || { echo "$build/$binary not built (make build)"; exit 1; }
done
# Events and the client's answers share the wall clock (bash's EPOCHREALTIME, Python's
# time.time()): no process is started to read it, so a busy machine does not skew it.
event() { echo "$1 $EPOCHREALTIME" >> "$work/events"; }

# The databases: lib.sh's start_replicating_db, disowned (killed on purpose: no
# job-control notice).
start_db() {
  start_replicating_db "$1" "$2" --innodb-buffer-pool-size=256M
  disown "$!"
}
machine_line
generation=1
start_db db$generation 1
primary=db$generation
q "${db1_port}" "CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'repl'; GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1';"
generation=2
start_db db$generation 2
replica=db$generation
follow "$db2_port" "$db1_port"
q "$db1_port" "CREATE DATABASE ledger CHARACTER SET utf8mb4"

# start_proxy NAME TARGET_PORT FD: our fault proxy, commands through a FIFO on FD; sets
# NAME_port.
start_proxy() {
  mkfifo "$work/$1.in"
  "$build/tests/fault_proxy" "$2" < "$work/$1.in" > "$work/$1.out" 2>&1 & pids+=($!)
  eval "exec $3> \"$work/$1.in\""
  for _ in $(seq 100); do grep -q listening "$work/$1.out" && break; sleep 0.05; done
  printf -v "${1}_port" '%s' "$(awk '/listening/ {print $2}' "$work/$1.out")"
}
start_proxy proxy "$db1_port" 7
proxy() { echo "$1" >&7; }
redis_port=$(free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no --dir "$work" \
  > "$work/redis.log" 2>&1 & pids+=($!)
wait_port "$redis_port"
start_proxy redis_proxy "$redis_port" 8
redis_proxy() { echo "$1" >&8; }
db="mysql://root@127.0.0.1:$proxy_port/ledger"
"$build/balancectl" migrate --db "$db" > "$work/migrate.log"

# Three balanced replicas on the proxy, and the gateway in front of them.
balanced_ports=() balanced_pids=()
start_balanced() {  # INDEX [PORT]
  local i=$1 port=${2:-$(free_port)}
  "$build/balanced" --listen "127.0.0.1:$port" --db "$db" --cache "redis://127.0.0.1:$redis_proxy_port" --threads 2 \
    --drain-delay-ms 2500 --log-level warn >> "$work/balanced-$i.log" 2>&1 & pids+=($!)
  balanced_pids[$i]=$!
  disown $!
  balanced_ports[$i]=$port
  wait_port "$port"
}
for i in 0 1 2; do start_balanced "$i"; done
create_accounts "${balanced_ports[0]}" 64 1000000000
"$build/balancectl" keygen --alg ES256 --kid k --key-out "$work/k.pem" --jwks-out "$work/jwks.json" > /dev/null
"$build/balancectl" token --key "$work/k.pem" --kid k --sub loader --scope admin --iss https://issuer.test \
  --aud balanced --ttl 86400 > "$work/token"
gateway_port=$(free_port)
upstreams=$(printf 'http://127.0.0.1:%s,' "${balanced_ports[@]}")
"$build/balance-gateway" --listen "127.0.0.1:$gateway_port" --admin-listen "127.0.0.1:$(free_port)" \
  --upstream "${upstreams%,}" --jwks "$work/jwks.json" --jwt-issuer https://issuer.test --jwt-audience balanced \
  --rate-limit 1000000/s:1000000 --ip-rate-limit 1000000/s:1000000 --access-log off --threads 2 \
  --log-level warn > "$work/gateway.log" 2>&1 & pids+=($!)
wait_port "$gateway_port"

python3 "$repo/bench/idempotent_client.py" "127.0.0.1:$gateway_port" "$work/token" 64 8 "$work/stop" \
  "$work/answers" & client_pid=$!
sleep 3

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
echo "promote: $cycles cycles"
for c in $(seq "$cycles"); do
  sleep 3
  event "kill-$c"
  kill -9 "$(eval echo "\$${primary}_pid")"
  replica_port=$(eval echo "\$${replica}_port")
  "$repo/scripts/promote-mariadb-replica.sh" --no-defaults -h127.0.0.1 -P"$replica_port" -uroot >> "$work/promote.log"
  proxy "move $replica_port"
  event "moved-$c"
  primary=$replica
  generation=$((generation + 1))
  start_db "db$generation" "$generation"
  replica=db$generation
  follow "$(eval echo "\$${replica}_port")" "$replica_port"
done

echo "blackhole: $cycles cycles of 10 s"
for c in $(seq "$cycles"); do
  sleep 3
  before=$(rss_kb "${balanced_pids[0]}")
  event "hole-$c"
  proxy blackhole
  proxy "move $(eval echo "\$${primary}_port")"  # the open connections fall in too
  sleep 9
  during=$(rss_kb "${balanced_pids[0]}")
  sleep 1
  proxy pass
  event "healed-$c"
  sleep 5
  echo "rss_kb $c $before $during $(rss_kb "${balanced_pids[0]}")" >> "$work/rss"
done

echo "rolling restart: $cycles cycles of three replicas"
for c in $(seq "$cycles"); do
  sleep 3
  event "rolling-$c"
  for i in 0 1 2; do
    kill -TERM "${balanced_pids[$i]}"
    while kill -0 "${balanced_pids[$i]}" 2>/dev/null; do sleep 0.05; done
    start_balanced "$i" "${balanced_ports[$i]}"
    sleep 2  # the gateway's health check puts it back
  done
  event "rolled-$c"
done

echo "replica killed: $cycles cycles"
for c in $(seq "$cycles"); do
  sleep 3
  i=$((c % 3))
  event "killreplica-$c"
  kill -9 "${balanced_pids[$i]}"
  sleep 2
  start_balanced "$i" "${balanced_ports[$i]}"
  sleep 2
  event "restarted-$c"
done

echo "outages: the database, then Redis, blackholed for a minute each"
for what in db redis; do
  sleep 3
  before=$(rss_kb "${balanced_pids[0]}")
  event "outage-$what"
  if [[ $what == db ]]; then
    proxy blackhole; proxy "move $(eval echo "\$${primary}_port")"
  else
    redis_proxy blackhole; redis_proxy "move $redis_port"
  fi
  peak=$before
  for _ in $(seq 60); do
    sleep 1
    now_kb=$(rss_kb "${balanced_pids[0]}")
    (( now_kb > peak )) && peak=$now_kb
  done
  if [[ $what == db ]]; then proxy pass; else redis_proxy pass; fi
  event "over-$what"
  sleep 5
  echo "outage_rss_kb $what $before $peak $(rss_kb "${balanced_pids[0]}")" >> "$work/rss"
done

sleep 2
touch "$work/stop"
wait "$client_pid"
# The audit chain is sealed by the singleton job within seconds of the last write.
for _ in $(seq 30); do
  "$build/balancectl" verify --db "$db" > "$work/verify.log" 2>&1 || true
  grep -q "awaiting the chain: 0$" "$work/verify.log" && break
  sleep 1
done
python3 - "$work" "${balanced_ports[0]}" "$cycles" <<'EOF'
import http.client, statistics, sys
work, port, cycles = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
events = {}
for line in open(f"{work}/events"):
    name, t = line.split()
    events[name] = float(t)
answers = []
for line in open(f"{work}/answers"):
    sent, done, status, tid = line.split()
    answers.append((float(sent), float(done), int(status), tid))
acked = {a[3] for a in answers if a[2] in (200, 201)}

def window(start, end):
    return [a for a in answers if start <= a[1] <= end]

def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p * (len(values) - 1))))]

rto, delay = [], []
for c in range(1, cycles + 1):
    kill = events[f"kill-{c}"]
    first = min((a[1] for a in answers if a[0] >= kill and a[2] in (200, 201)), default=None)
    rto.append(first - kill if first else float("inf"))
    delay.append(events[f"moved-{c}"] - kill)
print(f"promote: RTO s p50={pct(rto, .5):.2f} p99={pct(rto, .99):.2f} max={max(rto):.2f}; "
      f"promotion delay s p50={pct(delay, .5):.2f} max={max(delay):.2f}; RTO - delay max={max(r - d for r, d in zip(rto, delay)):.2f}")
codes = {}
for c in range(1, cycles + 1):
    for a in window(events[f"hole-{c}"], events[f"healed-{c}"] + 2):
        codes[a[2]] = codes.get(a[2], 0) + 1
print("blackhole: client-visible codes " + " ".join(f"{k}x{v}" for k, v in sorted(codes.items())))
for line in open(f"{work}/rss"):
    kind, c, before, during, after = line.split()
    label = f"blackhole {c}" if kind == "rss_kb" else f"a minute without {'the database' if c == 'db' else 'Redis'}"
    print(f"{label}: balanced RSS before {int(before)//1024} MiB, during {int(during)//1024} MiB (peak), after {int(after)//1024} MiB")
for what in ("db", "redis"):
    seen = window(events[f"outage-{what}"], events[f"over-{what}"] + 2)
    codes = {}
    for a in seen:
        codes[a[2]] = codes.get(a[2], 0) + 1
    print(f"a minute without {'the database' if what == 'db' else 'Redis'}: client-visible codes " +
          " ".join(f"{k}x{v}" for k, v in sorted(codes.items())))
for scenario, start, end in (("rolling restart", "rolling", "rolled"), ("replica killed", "killreplica", "restarted")):
    errors, total = 0, 0
    for c in range(1, cycles + 1):
        seen = window(events[f"{start}-{c}"], events[f"{end}-{c}"] + 1)
        total += len(seen)
        errors += sum(1 for a in seen if a[2] not in (200, 201))
    print(f"{scenario}: {errors} client-visible errors of {total} answers")
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
missing = 0
for tid in sorted(acked):
    conn.request("GET", f"/transactions/{tid}")
    response = conn.getresponse()
    body = response.read()
    if response.status != 200 or b'"committed"' not in body:
        missing += 1
print(f"acknowledged: {len(acked)} transfers, lost {missing}")
EOF
grep -E "verify:|awaiting" "$work/verify.log"
