#!/usr/bin/env bash
# shellcheck disable=SC2154  # start_db sets primary_port, replica_pid, ... (printf -v)
# What the change feed and the daily totals cost durable transfers on MariaDB, with two
# balanced replicas writing one database and a semi-synchronous MariaDB replica (issue 21:
# the event counter is one row that every replica's commit takes). This build against the
# previous binary, in alternated pairs, like bench/previous.sh.
#
# One MariaDB primary (GTID, log-bin, sync_binlog=1, semi-sync master, AFTER_SYNC; InnoDB
# durable) and its semi-synchronous replica, as bench/failover.sh starts them (no fault
# proxy: balanced connects to the primary). On the primary two databases, accounts
# a0..a999 in each, each migrated by its own release's balancectl (a binary refuses a
# schema newer than its own):
#   cur    cur-1, cur-2: $BUILD_DIR/balanced (this tree, the feed on)
#   prev   prev-1, prev-2: PREVIOUS, a balanced built from an earlier commit
# each --threads WORKERS (default 1), --cache none (a memory cache is per process: with two
# replicas only the database path is honest), --mysql-committers at its default.
# A leg loads one version's two replicas at once: two wrk processes (bench/wrk/gateway.lua
# "none:1000" transfer, -t1 -c$((CONNECTIONS / 2)) each, one per replica, ids of their own;
# the second numbered apart so that its random accounts are not the first's), SECONDS long.
# The leg's transfers/s is the sum of the two; its p50, p99, p99.9 and max each the larger of
# the two wrk's (their histograms are apart: the larger bounds the leg's from above); CPU per
# transfer is the two balanced's CPU (from /proc) over all the leg's requests, and apart
# from it the primary's and the replica's. Pair i runs current then previous on odd
# pairs, previous then current on even ones; before every leg the last leg's leftovers
# are waited out: its audit records chained by the sealing job, the replica caught up
# (MASTER_GTID_WAIT), InnoDB purged and flushed on both (lib.sh quiesce). A 2 s warm-up
# per version first, not reported. Then the ratios current/previous (mean, min..max of the
# pairs), `balancectl verify` of each database by its own release, and the primary's
# semi-sync counters (Rpl_semi_sync_master_no_tx should be 0: every commit acknowledged).
#
# Usage: bench/feed_mysql.sh PREVIOUS_BALANCED [PREVIOUS_BALANCECTL] [pairs, default 6]
#          [seconds, default 10] [connections, default 64]
#   PREVIOUS_BALANCECTL defaults (also when given as "") to balancectl beside PREVIOUS.
#   CURRENT_ARGS and PREVIOUS_ARGS, when set, are more flags for the one or the other
#   (e.g. --risk-rules bench/risk-rules-velocity.json for both: what velocity costs).
#   git worktree add /tmp/prev 72f36ce && cmake -S /tmp/prev -B /tmp/prev/build -G Ninja \
#     -DCMAKE_BUILD_TYPE=Release && cmake --build /tmp/prev/build --target balanced balancectl
#   bench/feed_mysql.sh /tmp/prev/build/balanced      (72f36ce: the commit before the feed)
# Needs build/balanced, build/balancectl, mariadbd (semi-sync built in: MariaDB >= 10.3),
# mariadb, wrk, python3.
set -euo pipefail
usage="usage: bench/feed_mysql.sh PREVIOUS_BALANCED [PREVIOUS_BALANCECTL] [pairs] [seconds] [connections]"
previous=${1:?$usage}
[[ $previous == /* ]] || previous=$PWD/$previous
previous_ctl=${2:-$(dirname "$previous")/balancectl}
[[ $previous_ctl == /* ]] || previous_ctl=$PWD/$previous_ctl
cd "$(dirname "$0")/.."
pairs=${3:-6}
seconds=${4:-10}
connections=${5:-64}
((connections >= 2 && connections % 2 == 0)) || { echo "connections: an even number, split over two replicas" >&2; exit 1; }
accounts=1000
workers=${WORKERS:-1}
build=${BUILD_DIR:-build}
export PATH=$PATH:/usr/sbin:/sbin
work=$(mktemp -d /tmp/balanced-feed-mysql-XXXXXX)
pids=()
source bench/lib.sh
trap cleanup EXIT
for program in "$build/balanced" "$build/balancectl" "$previous" "$previous_ctl"; do
  [[ -x $program ]] || { echo "no $program: build it first" >&2; exit 1; }
done

# The databases: lib.sh's, with start_mariadb's buffer pool and redo log; not disowned
# (stopped by cleanup, which waits for them).
start_db() { start_replicating_db "$1" "$2" --innodb-buffer-pool-size=1G --innodb-log-file-size=512M; }
machine_line
echo "database: $(mariadbd --version | awk '{print $3}'), InnoDB durable, GTID, sync_binlog=1, a semi-sync replica (AFTER_SYNC), on this machine"
echo "previous: $previous ($(stat -c %y "$previous" | cut -d. -f1)), migrated by $previous_ctl${PREVIOUS_ARGS:+, with $PREVIOUS_ARGS}"
[[ -z ${CURRENT_ARGS:-} ]] || echo "current: $build/balanced $CURRENT_ARGS"
echo "load: per version two balanced (--threads $workers, --cache none), each under wrk -t1 -c$((connections / 2)); ${seconds}s per leg, $pairs pairs, $accounts accounts"
echo

start_db primary 1
q "$primary_port" "CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'repl'; GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1';"
start_db replica 2
follow "$replica_port" "$primary_port"
db_port=$primary_port  # lib.sh's sql, url and quiesce: the primary
sql "CREATE DATABASE cur CHARACTER SET utf8mb4; CREATE DATABASE prev CHARACTER SET utf8mb4"
"$build/balancectl" migrate --db "$(url cur)" > "$work/migrate-cur.log"
"$previous_ctl" migrate --db "$(url prev)" > "$work/migrate-prev.log"

declare -A port pid binary=([cur]="$build/balanced" [prev]="$previous") args=([cur]="${CURRENT_ARGS:-}" [prev]="${PREVIOUS_ARGS:-}")
start() {  # name version
  local p
  p=$(free_port)
  # shellcheck disable=SC2086  # the extra flags split into words
  "${binary[$2]}" --listen "127.0.0.1:$p" --db "$(url "$2")" --cache none --threads "$workers" \
    --log-level warn ${args[$2]} > "$work/$1.log" 2>&1 & pids+=($!)
  port[$1]=$p
  pid[$1]=$!
  wait_port "$p" || { echo "$1 did not start:" >&2; tail "$work/$1.log" >&2; exit 1; }
}
for v in cur prev; do
  start "$v-1" "$v"
  start "$v-2" "$v"
  create_accounts "${port[$v-1]}" "$accounts" 100000000000
done

# The second wrk of a leg: gateway.lua with its thread numbered 1000 (each wrk thread's
# random accounts are seeded by its number: two wrk -t1 would post the same sequence).
cat > "$work/second.lua" <<LUA
dofile("$PWD/bench/wrk/gateway.lua")
local setup_first, n = setup, 1000
function setup(thread) setup_first(thread); thread:set("id", n); n = n + 1 end
LUA
load() {  # version seconds prefix: both wrk at once, one per replica; RESULT lines in $work/prefix-{1,2}.txt
  local first
  wrk -t1 -c$((connections / 2)) -d"$2s" --latency -s bench/wrk/gateway.lua "http://127.0.0.1:${port[$1-1]}" \
    -- "none:$accounts" transfer "$3-1-" > "$work/$3-1.txt" & pids+=($!)
  first=$!
  wrk -t1 -c$((connections / 2)) -d"$2s" --latency -s "$work/second.lua" "http://127.0.0.1:${port[$1-2]}" \
    -- "none:$accounts" transfer "$3-2-" > "$work/$3-2.txt" & pids+=($!)
  wait "$first"
  wait "$!"
}
# settle: the last leg's leftovers done before the next starts - its audit records chained
# (every replica runs the sealing job without Redis), the replica caught up, InnoDB quiet.
unsealed="SELECT COUNT(*) FROM audit_record r WHERE r.log_id > (SELECT linked_log_id FROM audit_chain WHERE id = 1)
          AND NOT EXISTS (SELECT 1 FROM audit_link k WHERE k.log_id = r.log_id)"
settle() {
  local database
  for database in cur prev; do
    # At most SEAL_WAIT_S (default 20) a database: the sealer may trail a loaded leg by
    # longer, and what is left seals during the next leg, either version's alike.
    for _ in $(seq "${SEAL_WAIT_S:-20}"); do
      [[ $(q "$primary_port" "USE $database; $unsealed") == 0 ]] && break
      sleep 1
    done
  done
  [[ $(q "$replica_port" "SELECT MASTER_GTID_WAIT('$(q "$primary_port" "SELECT @@gtid_binlog_pos")', 120)") == 0 ]] ||
    echo "  (the replica is not caught up after 120 s)" >&2
  quiesce
  db_port=$replica_port quiesce
}
larger() { awk -v a="$(field "$1" "$3")" -v b="$(field "$2" "$3")" 'BEGIN { print (a > b ? a : b) }'; }
leg() {  # version pair
  local v=$1 b0 d0 r0 b1 d1 r1 line1 line2 rps requests non2xx p50 p99 p999 max bal db rep
  b0=$(($(cpu_ticks "${pid[$v-1]}") + $(cpu_ticks "${pid[$v-2]}")))
  d0=$(cpu_ticks "$primary_pid")
  r0=$(cpu_ticks "$replica_pid")
  load "$v" "$seconds" "$v-$2"
  b1=$(($(cpu_ticks "${pid[$v-1]}") + $(cpu_ticks "${pid[$v-2]}")))
  d1=$(cpu_ticks "$primary_pid")
  r1=$(cpu_ticks "$replica_pid")
  line1=$(result "$work/$v-$2-1.txt") || true
  line2=$(result "$work/$v-$2-2.txt") || true
  [[ -n $line1 && -n $line2 ]] || { echo "wrk gave no result against $v:" >&2; cat "$work/$v-$2"-?.txt >&2; exit 1; }
  rps=$(($(field "$line1" rps) + $(field "$line2" rps)))
  requests=$(($(field "$line1" requests) + $(field "$line2" requests)))
  non2xx=$(($(field "$line1" non2xx) + $(field "$line2" non2xx)))
  p50=$(larger "$line1" "$line2" p50_ms)
  p99=$(larger "$line1" "$line2" p99_ms)
  p999=$(larger "$line1" "$line2" p999_ms)
  max=$(larger "$line1" "$line2" max_ms)
  bal=$(per_request_us $((b1 - b0)) "$requests")
  db=$(per_request_us $((d1 - d0)) "$requests")
  rep=$(per_request_us $((r1 - r0)) "$requests")
  printf '  %-5s rps=%s (%s + %s) ms: p50=%s p99=%s (%s, %s) p99.9=%s max=%s non2xx=%s  cpu/transfer: balanced %sus, primary %sus, replica %sus\n' \
    "$v:" "$rps" "$(field "$line1" rps)" "$(field "$line2" rps)" "$p50" "$p99" "$(field "$line1" p99_ms)" \
    "$(field "$line2" p99_ms)" "$p999" "$max" "$non2xx" "$bal" "$db" "$rep"
  echo "$2 $v $rps $bal $db $p99 $non2xx $rep $p50 $p999 $max" >> "$work/results.txt"
}

# Warm-up, not reported.
for v in cur prev; do settle; load "$v" 2 "warm-$v"; done

for pair in $(seq "$pairs"); do
  echo "pair $pair:"
  if ((pair % 2)); then order="cur prev"; else order="prev cur"; fi
  for v in $order; do settle; leg "$v" "$pair"; done
done

echo
echo "current / previous over $pairs alternated pairs (mean, and min..max of the pairs):"
# results.txt: pair version rps balanced_us primary_us p99_ms non2xx replica_us p50_ms p999_ms max_ms
awk -v width=42 "$pairs_stat_awk"'{ rps[$1, $2] = $3; bal[$1, $2] = $4; db[$1, $2] = $5; p99[$1, $2] = $6; rep[$1, $2] = $8
       seen[$2] = 1; p50[$1, $2] = $9; p999[$1, $2] = $10; max[$1, $2] = $11; bad += $7; if ($1 > n) n = $1 }
END {
  for (i = 1; i <= n; i++) {
    t[i] = rps[i, "cur"] / rps[i, "prev"]
    b[i] = bal[i, "cur"] / bal[i, "prev"]
    d[i] = db[i, "cur"] / db[i, "prev"]
    r[i] = rep[i, "cur"] / rep[i, "prev"]
    m[i] = p50[i, "cur"] / p50[i, "prev"]
    p[i] = p99[i, "cur"] / p99[i, "prev"]
    q[i] = p999[i, "cur"] / p999[i, "prev"]
    x[i] = max[i, "cur"] / max[i, "prev"]
    for (v in seen) {
      sum[v, "rps"] += rps[i, v]; sum[v, "p50"] += p50[i, v]; sum[v, "p99"] += p99[i, v]
      sum[v, "p999"] += p999[i, v]; sum[v, "max"] += max[i, v]
    }
  }
  stat("transfers/s, current/previous:", t)
  stat("balanced CPU per transfer, current/previous:", b)
  stat("database CPU per transfer, current/previous:", d)
  stat("replica CPU per transfer, current/previous:", r)
  stat("p50, current/previous:", m)
  stat("p99, current/previous:", p)
  stat("p99.9, current/previous:", q)
  stat("max, current/previous:", x)
  for (v in seen)
    printf "  %-5s mean of the pairs: %.0f transfers/s; ms: p50 %.2f, p99 %.2f, p99.9 %.2f, max %.2f\n", v ":",
      sum[v, "rps"] / n, sum[v, "p50"] / n, sum[v, "p99"] / n, sum[v, "p999"] / n, sum[v, "max"] / n
  printf "  non-2xx answers in all legs: %d\n", bad
}' "$work/results.txt"

settle
"$build/balancectl" verify --db "$(url cur)" | tail -1 | sed 's/^/after the run, current: /'
"$previous_ctl" verify --db "$(url prev)" | tail -1 | sed 's/^/after the run, previous: /'
semisync=$(q "$primary_port" "SHOW GLOBAL STATUS WHERE Variable_name IN ('Rpl_semi_sync_master_status',
  'Rpl_semi_sync_master_clients', 'Rpl_semi_sync_master_yes_tx', 'Rpl_semi_sync_master_no_tx')")
echo "semi-sync at the primary: $(tr '\t\n' '= ' <<< "$semisync")"
no_tx=$(awk '$1 == "Rpl_semi_sync_master_no_tx" { print $2 }' <<< "$semisync")
[[ ${no_tx:-1} == 0 ]] || echo "WARNING: $no_tx commits were not acknowledged by the replica (semi-sync timed out)"
