# shellcheck shell=bash
# MariaDB replica, first start only: follow the primary (the Service `mariadb`) by GTID.
# Sourced (mounted without the executable bit) by the official image's entrypoint from
# /docker-entrypoint-initdb.d, so docker_process_sql (root, on the temporary server's
# socket) is at hand. The password is read from the Secret `mariadb`, never from an
# environment variable. MASTER_USE_GTID=slave_pos with an empty gtid_slave_pos: the replica
# starts from the primary's first binlog, so it receives the database `balanced`, its user
# and the replication user from the primary (this server makes none of them itself: with
# gtid_strict_mode a transaction of its own would conflict with the primary's).
# MASTER_CONNECT_RETRY: the primary may still be initialising; the IO thread retries every
# 10 s (master_retry_count times) and the server starts replicating on every later start.
replication_password=$(< /run/secrets/mariadb/replication-password)
replication_password=${replication_password//\\/\\\\}
replication_password=${replication_password//\'/\\\'}
docker_process_sql --database=mysql <<EOSQL
CHANGE MASTER TO
  MASTER_HOST='mariadb',
  MASTER_PORT=3306,
  MASTER_USER='replication',
  MASTER_PASSWORD='${replication_password}',
  MASTER_USE_GTID=slave_pos,
  MASTER_CONNECT_RETRY=10;
START SLAVE;
EOSQL
unset replication_password
