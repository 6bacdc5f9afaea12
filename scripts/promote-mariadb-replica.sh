#!/usr/bin/env bash
# Promotes a MariaDB replica to primary after its primary is gone (docs/OPERATIONS.md,
# "Failover"). With semi-synchronous replication AFTER_SYNC every acknowledged commit was
# received by a replica before its client got the answer, so the replica must first apply
# everything it received; then replication is stopped for good and the server made writable.
# Then move the endpoint (DNS name, proxy, Service) the balanced replicas use to this server;
# they reconnect by themselves. The old primary must not come back as a primary: rebuild it,
# or rejoin it as a replica with its unacknowledged binlog tail discarded
# (mariadbd --init-rpl-role=SLAVE, then CHANGE MASTER TO ... MASTER_USE_GTID=slave_pos).
#
# Usage: scripts/promote-mariadb-replica.sh [mariadb client options]
#   e.g. scripts/promote-mariadb-replica.sh -h 10.0.0.12 -P 3306 -u admin -p
# Waits at most PROMOTE_APPLY_TIMEOUT_S (default 60) for the relay log to be applied.
set -euo pipefail
timeout_s=${PROMOTE_APPLY_TIMEOUT_S:-60}
client=("$@")
run() { local query=$1; mariadb "${client[@]}" -N -B -e "$query"; }

# 1. Nothing more will come from the old primary.
run "STOP SLAVE IO_THREAD"
io_pos=$(mariadb "${client[@]}" -e "SHOW SLAVE STATUS\G" | sed -n 's/^ *Gtid_IO_Pos: *//p')
[[ -n "$io_pos" ]] || { echo "promote: no Gtid_IO_Pos: is this a GTID replica (MASTER_USE_GTID)?" >&2; exit 1; }
# 2. Everything received is applied: the acknowledged commits are all here.
waited=$(run "SELECT MASTER_GTID_WAIT('$io_pos', $timeout_s)")
[[ "$waited" == 0 ]] || { echo "promote: the relay log was not applied within ${timeout_s} s (GTID $io_pos)" >&2; exit 1; }
# 3. Replication stopped for good; writable.
run "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL rpl_semi_sync_slave_enabled = OFF; SET GLOBAL read_only = OFF"
echo "promoted: applied up to GTID $io_pos; now $(run 'SELECT @@gtid_binlog_pos')"
