# Helpers the bench scripts share. Source it; the caller sets `work` and `pids`.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 600); do (echo > /dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; return 1; }
result() { grep '^RESULT' "$1" | sed 's/RESULT //'; }          # a bench output's RESULT fields
field() { sed -n "s/.*$2=\([0-9.]*\).*/\1/p" <<< "$1"; }      # one field of them
# Stops every process the script started (by pid) and removes its directory.
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
machine_line() {
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"), $(uname -r)"
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)"
}
# create_accounts PORT COUNT BALANCE: accounts a0..a<COUNT-1> on the balanced at PORT, each
# with BALANCE, over 8 kept-alive connections (directly, not through a proxy).
create_accounts() {
  python3 - "$@" <<'EOF'
import concurrent.futures, http.client, json, sys
port, n, balance, clients = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), 8
def create(first):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for i in range(first, n, clients):
        body = json.dumps({"accountNumber": f"a{i}", "initialBalance": balance})
        conn.request("POST", "/accounts", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        if response.status != 201:
            raise SystemExit(f"POST /accounts a{i}: HTTP {response.status}")
with concurrent.futures.ThreadPoolExecutor(clients) as pool:
    list(pool.map(create, range(clients)))
EOF
}
# start_balanced_sqlite: balanced on a fresh SQLite file in $work (synchronous=FULL),
# logging warnings to $work/balanced.log; sets balanced_port and balanced_pid.
start_balanced_sqlite() {
  balanced_port=$(free_port)
  "$build/balanced" --listen "127.0.0.1:$balanced_port" --db "sqlite:$work/ledger.db" --log-level warn \
    > "$work/balanced.log" 2>&1 & pids+=($!)
  balanced_pid=$!
  wait_port "$balanced_port"
}
# CPU ticks (user + system) of a process so far, and ticks spread over requests in µs.
hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
per_request_us() { awk -v t="$1" -v n="$2" -v hz="$hz" 'BEGIN { printf "%.1f", t * 1e6 / hz / (n ? n : 1) }'; }
# start_nginx WORKERS: nginx answering a fixed JSON body (bench/nginx.conf.in) in
# $work/nginx; sets nginx_port and nginx_pid.
start_nginx() {
  nginx_port=$(free_port)
  mkdir -p "$work/nginx"
  sed -e "s|@DIR@|$work/nginx|g" -e "s|@PORT@|$nginx_port|g" -e "s|@WORKERS@|$1|g" \
    bench/nginx.conf.in > "$work/nginx/nginx.conf"
  nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" > /dev/null 2>&1 & pids+=($!)
  nginx_pid=$!
  wait_port "$nginx_port"
}
# CPU seconds (user + system) a process has used so far.
cpu_s() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat"; }
# start_mariadb: a durable MariaDB (innodb_flush_log_at_trx_commit=1, the default) on a
# fresh datadir under $work, on 127.0.0.1:$db_port; sets db_port and db_pid, defines sql
# and url. Its own tmpdir: a starting mariadbd deletes every #sql* file in its tmpdir.
start_mariadb() {
  db_port=$(free_port)
  mariadb-install-db --no-defaults --datadir="$work/data" --tmpdir="$work" --user=root \
    --auth-root-authentication-method=normal --skip-test-db > "$work/install.log" 2>&1
  mariadbd --no-defaults --datadir="$work/data" --user=root --bind-address=127.0.0.1 \
    --port="$db_port" --socket="$work/mysqld.sock" --pid-file="$work/mysqld.pid" --tmpdir="$work" \
    --skip-name-resolve --innodb-buffer-pool-size=1G --innodb-log-file-size=512M \
    --max-connections=1000 > "$work/mariadbd.log" 2>&1 & pids+=($!)
  db_pid=$!
  wait_port "$db_port"
}
sql() { mariadb --no-defaults -h127.0.0.1 -P"$db_port" -uroot -e "$1"; }
url() { echo "mysql://root@127.0.0.1:$db_port/$1"; }
# Waits (at most a minute) until InnoDB has purged old row versions and flushed dirty
# pages, so that one scenario's leftovers do not run during the next.
quiesce() {
  for _ in $(seq 60); do
    local history dirty
    history=$(sql "SHOW ENGINE INNODB STATUS\G" | sed -n 's/^History list length \([0-9]*\).*/\1/p')
    dirty=$(sql "SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'" | awk 'NR == 2 { print $2 }')
    [[ ${history:-0} -lt 1000 && ${dirty:-0} -lt 500 ]] && return 0
    sleep 1
  done
}
# start_rabbitmq: a throwaway RabbitMQ node (Debian's rabbitmq-server) under $work/rabbitmq,
# on 127.0.0.1 and free ports, with its own epmd (both stopped by pid at cleanup: the
# node's shell forwards SIGTERM to the VM); waits until a durable queue `ledger-feed`
# can be declared. Sets amqp_port, amqp_url (user guest, password in $work/amqp-password) and
# rabbitmq_pid.
# The environment is tests/support/rabbitmq_server.h's (see there why each variable).
start_rabbitmq() {
  local r=$work/rabbitmq dist epmd
  amqp_port=$(free_port); dist=$(free_port); epmd=$(free_port)
  mkdir -p "$r/home" "$r/mnesia" "$r/log"
  echo '[].' > "$r/enabled_plugins"; echo '[].' > "$r/advanced.config"; : > "$r/rabbitmq-env.conf"
  printf 'listeners.tcp.1 = 127.0.0.1:%s\nloopback_users.guest = true\nlog.console = true\nlog.console.level = warning\nlog.file = false\nlog.console.use_colors = off\n' \
    "$amqp_port" > "$r/rabbitmq.conf"
  env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin HOME="$r/home" /usr/bin/epmd -port "$epmd" -address 127.0.0.1 \
    > "$r/epmd.log" 2>&1 & pids+=($!)
  wait_port "$epmd"
  (cd "$r" && exec env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin HOME="$r/home" LANG=C.UTF-8 LC_ALL=C.UTF-8 \
    ERL_EPMD_PORT="$epmd" ERL_EPMD_ADDRESS=127.0.0.1 \
    ERL_AFLAGS="-start_epmd false -kernel inet_dist_use_interface {127,0,0,1}" \
    RABBITMQ_CONF_ENV_FILE="$r/rabbitmq-env.conf" RABBITMQ_NODENAME="rabbit-bench-$amqp_port@localhost" \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$amqp_port" RABBITMQ_DIST_PORT="$dist" \
    RABBITMQ_CONFIG_FILE="$r/rabbitmq.conf" RABBITMQ_ADVANCED_CONFIG_FILE="$r/advanced.config" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$r/enabled_plugins" RABBITMQ_MNESIA_BASE="$r/mnesia" \
    RABBITMQ_LOG_BASE="$r/log" RABBITMQ_PID_FILE="$r/rabbitmq.pid" \
    RABBITMQ_FEATURE_FLAGS_FILE="$r/feature_flags" RABBITMQ_QUORUM_DIR="$r/quorum" \
    ERL_CRASH_DUMP="$r/erl_crash.dump" /usr/lib/rabbitmq/bin/rabbitmq-server) > "$r/server.log" 2>&1 & pids+=($!)
  rabbitmq_pid=$!  # the node's shell; its child is the VM (beam.smp)
  echo guest > "$work/amqp-password"
  amqp_url="amqp://guest@127.0.0.1:$amqp_port/%2f"
  for _ in $(seq 900); do
    amqp-declare-queue --url="amqp://guest:guest@127.0.0.1:$amqp_port/%2f" -d -q ledger-feed > /dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "rabbitmq did not start:" >&2; tail -20 "$r/server.log" >&2; return 1
}
# start_replicating_db NAME SERVER_ID [MARIADBD_FLAGS...]: a fresh mariadbd under
# $work/NAME with the replication settings of OPERATIONS "Failover" (GTID, row binlog,
# sync_binlog=1, semi-sync AFTER_SYNC on both sides) and the flags given (buffer pool,
# redo log); sets NAME_port and NAME_pid. The semi-sync master side is turned on once a
# replica is there (follow): before, every commit would wait out the timeout.
start_replicating_db() {
  local name=$1 id=$2 dir=$work/$1 port
  shift 2
  port=$(free_port)
  mkdir -p "$dir/tmp"
  mariadb-install-db --no-defaults --datadir="$dir/data" --tmpdir="$dir/tmp" --user=root \
    --auth-root-authentication-method=normal --skip-test-db > "$dir/install.log" 2>&1
  mariadbd --no-defaults --datadir="$dir/data" --tmpdir="$dir/tmp" --user=root --bind-address=127.0.0.1 \
    --port="$port" --socket="$dir/s.sock" --pid-file="$dir/p.pid" --skip-name-resolve \
    --max-connections=1000 --server-id="$id" --log-bin=binlog --log-slave-updates=ON \
    --binlog-format=ROW --sync-binlog=1 --gtid-strict-mode=ON \
    --rpl-semi-sync-master-wait-point=AFTER_SYNC --rpl-semi-sync-master-timeout=10000 \
    --rpl-semi-sync-slave-enabled=ON "$@" > "$dir/mariadbd.log" 2>&1 & pids+=($!)
  printf -v "${name}_pid" '%s' $!
  printf -v "${name}_port" '%s' "$port"
  wait_port "$port" || { tail "$dir/mariadbd.log"; exit 1; }
}
# An awk function for the alternated-pairs summaries (previous.sh, feed_mysql.sh), put
# before the program: stat(name, a) prints the mean of a[1..n] (n: the pairs, a global
# the program sets) with its min..max, the name padded to `width` (set with -v).
# shellcheck disable=SC2016  # awk's own $ fields
pairs_stat_awk='function stat(name, a,   i, r, sum, lo, hi) {
  lo = 1e9; hi = -1e9
  for (i = 1; i <= n; i++) { r = a[i]; sum += r; if (r < lo) lo = r; if (r > hi) hi = r }
  printf "  %-" width "s %.3f  (%.3f..%.3f)\n", name, sum / n, lo, hi
}
'
# q PORT SQL: the MariaDB on 127.0.0.1:PORT, as root, rows tab-separated, no headers.
q() { local port=$1; shift; mariadb --no-defaults -h127.0.0.1 -P"$port" -uroot -N -B -e "$*"; }
# follow REPLICA_PORT PRIMARY_PORT: the replica follows the primary by GTID, and the
# primary waits for its acknowledgement from then on.
follow() {
  q "$1" "RESET MASTER; SET GLOBAL gtid_slave_pos = ''; SET GLOBAL read_only = ON;
          CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$2, MASTER_USER='repl',
          MASTER_PASSWORD='repl', MASTER_USE_GTID=slave_pos; START SLAVE;"
  q "$2" "SET GLOBAL rpl_semi_sync_master_enabled = ON"
  for _ in $(seq 300); do
    [[ $(q "$2" "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='RPL_SEMI_SYNC_MASTER_CLIENTS'") == 1 ]] && return 0
    sleep 0.1
  done
  echo "the replica on $1 never acknowledged semi-synchronously"; exit 1
}
