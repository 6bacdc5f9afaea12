#!/usr/bin/env bash
# A network partition made by the kernel, not by a proxy (DESIGN.md section 12; the fault
# lab's iptables case): the whole scenario runs in a network namespace of its own (so its
# loopback and its iptables rules are its own and vanish with it), with MariaDB and balanced
# on its 127.0.0.1. Under a load of transfers that carry their ids (bench/idempotent_client.py),
# iptables drops every packet to and from the database's port for 8 s: TCP sees no refusal,
# only silence and retransmits. Checked: clients get 503 (nothing else) during the partition,
# /readyz turns 503 while /metrics still answers, writes resume by themselves when the rules
# are removed, every acknowledged transfer is present, `balancectl verify` is clean.
# Usage: tests/ha/partition_test.sh BUILD_DIR          Last line: "N passed, M failed".
set -uo pipefail
if [[ -z "${BALANCED_IN_NETNS:-}" ]]; then
  command -v iptables > /dev/null || { echo "FAIL: iptables not installed (scripts/install-deps.sh test)"; echo "0 passed, 1 failed"; exit 1; }
  exec unshare --net --mount env BALANCED_IN_NETNS=1 "$0" "$@"
fi
export PATH=$PATH:/usr/sbin:/sbin
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
work=$(mktemp -d /tmp/balanced-partition-XXXXXX)
source "$repo/tests/deploy/lib.sh"
abort() { fail "$1"; finish; }
show() { echo "--- $1"; tail -20 "$1" || true; }

ip link set lo up || abort "cannot bring up the namespace's loopback"
iptables -L INPUT > /dev/null 2>&1 || abort "iptables does not work in a network namespace here"

# MariaDB and balanced on the namespace's own loopback.
db_port=$(free_port)
mkdir -p "$work/db/tmp"
mariadb-install-db --no-defaults --datadir="$work/db/data" --tmpdir="$work/db/tmp" --user=root \
  --auth-root-authentication-method=normal --skip-test-db > "$work/db/install.log" 2>&1 || abort "mariadb-install-db"
mariadbd --no-defaults --datadir="$work/db/data" --tmpdir="$work/db/tmp" --user=root --bind-address=127.0.0.1 \
  --port="$db_port" --socket="$work/db/s.sock" --pid-file="$work/db/p.pid" --skip-name-resolve \
  --innodb-buffer-pool-size=128M > "$work/db/mariadbd.log" 2>&1 & pids+=($!)
wait_port "$db_port" || { show "$work/db/mariadbd.log"; abort "mariadbd did not start"; }
mariadb --no-defaults -h127.0.0.1 -P"$db_port" -uroot -e "CREATE DATABASE ledger" || abort "CREATE DATABASE"
db="mysql://root@127.0.0.1:$db_port/ledger"
"$build/balancectl" migrate --db "$db" > "$work/migrate.log" 2>&1 || { show "$work/migrate.log"; abort "migrate"; }
api=$(free_port)
"$build/balanced" --listen "127.0.0.1:$api" --db "$db" --cache none --threads 2 --storage-deadline-ms 2000 \
  --log-level warn > "$work/balanced.log" 2>&1 & pids+=($!)
balanced_pid=$!
wait_port "$api" || { show "$work/balanced.log"; abort "balanced did not start"; }
for i in $(seq 0 15); do
  [[ $(status "127.0.0.1:$api/accounts" -X POST -H 'Content-Type: application/json' \
       -d "{\"accountNumber\":\"a$i\",\"initialBalance\":1000000}") == 201 ]] || abort "creating account a$i"
done
echo unused > "$work/token"  # balanced on loopback checks no token
python3 "$repo/bench/idempotent_client.py" "127.0.0.1:$api" "$work/token" 16 4 "$work/stop" "$work/answers" &
client=$!
acked() { awk '$3 == 200 || $3 == 201' "$work/answers" 2> /dev/null | wc -l; }
progresses() {  # MORE: that many more acknowledged within 60 s
  local target=$(( $(acked) + $1 ))
  for _ in $(seq 600); do (( $(acked) >= target )) && return 0; sleep 0.1; done
  return 1
}
progresses 200 && pass "load before the partition" || fail "load before the partition" "$(acked) acknowledged"

# The partition: every packet to or from the database's port dropped, both ways.
start=$EPOCHREALTIME
iptables -A INPUT -p tcp --dport "$db_port" -j DROP && iptables -A INPUT -p tcp --sport "$db_port" -j DROP ||
  abort "iptables -A"
ready=200
for _ in $(seq 60); do
  ready=$(status "127.0.0.1:$api/readyz" --max-time 3)
  [[ $ready == 503 ]] && break
  sleep 0.1
done
[[ $ready == 503 ]] && pass "/readyz turns 503 during the partition, without waiting on the database" ||
  fail "/readyz during the partition" "HTTP $ready"
[[ $(status "127.0.0.1:$api/metrics" --max-time 3) == 200 ]] && pass "/metrics answers during the partition" ||
  fail "/metrics during the partition"
sleep 6
iptables -D INPUT -p tcp --dport "$db_port" -j DROP && iptables -D INPUT -p tcp --sport "$db_port" -j DROP ||
  abort "iptables -D"
end=$EPOCHREALTIME
progresses 200 && pass "writes resume by themselves when the partition heals" ||
  { fail "writes after the partition" "$(acked) acknowledged"; show "$work/balanced.log"; }
touch "$work/stop"
wait "$client"
codes=$(awk -v s="$start" -v e="$end" '$2 >= s + 0.5 && $2 <= e { print $3 }' "$work/answers" | sort | uniq -c | tr -s ' ' | paste -sd, -)
if [[ -n "$codes" ]] && ! awk -v s="$start" -v e="$end" '$2 >= s + 0.5 && $2 <= e && $3 != 503 && $3 != 201 && $3 != 200 { bad = 1 } END { exit !bad }' "$work/answers"; then
  pass "clients saw 503 (and answers already under way) during the partition, nothing else: $codes"
else
  fail "codes during the partition" "${codes:-none}"
fi

missing=$(python3 - "$api" "$work/answers" <<'EOF'
import http.client, sys
port, path = int(sys.argv[1]), sys.argv[2]
acked = {line.split()[3] for line in open(path) if line.split()[2] in ("200", "201")}
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
missing = 0
for tid in acked:
    conn.request("GET", f"/transactions/{tid}")
    response = conn.getresponse()
    body = response.read()
    missing += response.status != 200 or b'"committed"' not in body
print(f"{missing} {len(acked)}")
EOF
)
[[ ${missing%% *} == 0 ]] && pass "every acknowledged transfer is there (${missing##* })" || fail "acknowledged transfers missing" "$missing"
verified=0
for _ in $(seq 30); do
  "$build/balancectl" verify --db "$db" > "$work/verify.log" 2>&1 && grep -q "awaiting the chain: 0$" "$work/verify.log" &&
    { verified=1; break; }
  sleep 1
done
[[ $verified == 1 ]] && grep -q "verify: clean" "$work/verify.log" && pass "balancectl verify: clean, the audit chain sealed" ||
  fail "balancectl verify" "$(tail -3 "$work/verify.log")"
kill -TERM "$balanced_pid"
wait "$balanced_pid" && pass "balanced exits 0 on SIGTERM after the partition" || fail "balanced's exit status"
finish
