# shellcheck shell=bash
# MariaDB primary, first start only: the replication user `replication`. Sourced (mounted
# without the executable bit) by the official image's entrypoint from
# /docker-entrypoint-initdb.d, after it made the database `balanced` and its user, so
# docker_process_sql (root, on the temporary server's socket) is at hand. The password is
# read from the Secret `mariadb` (kustomization.yaml), never from an environment variable.
# Binlogged on purpose: the replica receives the user too, so after a promotion the old
# primary can rejoin it as a replica with the same credentials.
replication_password=$(< /run/secrets/mariadb/replication-password)
replication_password=${replication_password//\\/\\\\}
replication_password=${replication_password//\'/\\\'}
docker_process_sql --database=mysql <<EOSQL
CREATE USER 'replication'@'%' IDENTIFIED BY '${replication_password}';
GRANT REPLICATION SLAVE ON *.* TO 'replication'@'%';
EOSQL
unset replication_password
