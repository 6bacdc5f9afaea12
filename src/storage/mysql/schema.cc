#include "storage/mysql/schema.h"

#include <array>
#include <vector>

#include "storage/mysql/mysql_store.h"

namespace balanced::storage {

using mysql::Connection;

namespace {

// One statement of a migration. MySQL commits DDL implicitly, so a migration that
// crashed halfway runs again from its first statement: each statement is re-runnable as
// written, or says by `done_when` how to see that it already ran.
struct MigrationStep {
  enum class DoneWhen { never, table_exists, column_exists, column_gone, index_exists };
  MigrationStep(const char* statement, DoneWhen when = DoneWhen::never,  // NOLINT: a literal is a step
                const char* in_table = nullptr, const char* column_name = nullptr)
      : sql(statement), done_when(when), table(in_table), column(column_name) {}
  const char* sql;
  DoneWhen done_when;
  const char* table;
  const char* column;
};
using Done = MigrationStep::DoneWhen;

// Versioned migrations: entry i takes the schema from version i to i + 1, one statement
// at a time. Never edit an entry that has shipped; append a new one.
// Identifiers and money are binary-exact: VARBINARY compares bytes, as the core sorts.
const std::array<std::vector<MigrationStep>, 11> kMigrations{{
    {
        // The account number is the clustered key: every batch locks its accounts in
        // that one order, whatever plan the optimizer picks, and a lock is one record.
        R"sql(CREATE TABLE IF NOT EXISTS accounts (
  id BIGINT NOT NULL AUTO_INCREMENT,
  account_number VARBINARY(64) NOT NULL,
  currency VARBINARY(8) NOT NULL,
  balance BIGINT NOT NULL,
  overdraft_limit BIGINT NOT NULL,
  version BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (account_number),
  UNIQUE KEY accounts_by_id (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4)sql",
        R"sql(CREATE TABLE IF NOT EXISTS transactions (
  sequence BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  transaction_id VARBINARY(64) NOT NULL,
  type VARCHAR(16) NOT NULL,
  source_account VARBINARY(64) NOT NULL,
  destination_account VARBINARY(64) NOT NULL,
  amount BIGINT NOT NULL,
  currency VARBINARY(8) NOT NULL,
  status VARCHAR(16) NOT NULL,
  reject_code VARCHAR(32) NULL,
  source_balance_after BIGINT NOT NULL,
  destination_balance_after BIGINT NOT NULL,
  request_hash VARBINARY(64) NOT NULL,
  client_timestamp VARBINARY(64) NOT NULL,
  created_at BIGINT NOT NULL,
  UNIQUE KEY transactions_by_id (transaction_id),
  KEY transactions_by_source (source_account, sequence),
  KEY transactions_by_destination (destination_account, sequence)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4)sql",
        R"sql(CREATE TABLE IF NOT EXISTS audit_log (
  log_id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  operation_type VARCHAR(32) NOT NULL,
  operator VARBINARY(64) NOT NULL,
  operation_time BIGINT NOT NULL,
  detail MEDIUMBLOB NOT NULL,
  chain_seq BIGINT NULL,
  prev_hash BINARY(32) NULL,
  hash BINARY(32) NULL,
  UNIQUE KEY audit_by_chain (chain_seq)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4)sql",
        R"sql(CREATE TABLE IF NOT EXISTS audit_chain (
  id TINYINT NOT NULL PRIMARY KEY,
  sealed_seq BIGINT NOT NULL,
  head BINARY(32) NOT NULL,
  fence BIGINT NOT NULL
) ENGINE=InnoDB)sql",
        "INSERT IGNORE INTO audit_chain (id, sealed_seq, head, fence) VALUES (1, 0, "
        "X'0000000000000000000000000000000000000000000000000000000000000000', 0)",
    },
    {
        // Version 2: sealing appends a link row instead of rewriting the record. Records
        // live in `audit_record` (written once, by their batch), their chain positions
        // and hashes in `audit_link`; the view `audit_log` joins them into the table of
        // DESIGN.md §3. `audit_barrier` is the row every batch share-locks before it
        // writes records and the sealer locks alone (MysqlStore::seal_audit).
        R"sql(CREATE TABLE IF NOT EXISTS audit_link (
  log_id BIGINT NOT NULL PRIMARY KEY,
  chain_seq BIGINT NOT NULL,
  prev_hash BINARY(32) NOT NULL,
  hash BINARY(32) NOT NULL,
  UNIQUE KEY audit_link_by_chain (chain_seq)
) ENGINE=InnoDB)sql",
        "CREATE TABLE IF NOT EXISTS audit_barrier (id TINYINT NOT NULL PRIMARY KEY) ENGINE=InnoDB",
        "INSERT IGNORE INTO audit_barrier (id) VALUES (1)",
        {"RENAME TABLE audit_log TO audit_record", Done::table_exists, "audit_record"},
        // Every record at or below linked_log_id is linked or will never exist.
        {"ALTER TABLE audit_chain ADD COLUMN linked_log_id BIGINT NOT NULL DEFAULT 0",
         Done::column_exists, "audit_chain", "linked_log_id"},
        {"UPDATE audit_chain SET linked_log_id = COALESCE("
         "(SELECT MIN(log_id) - 1 FROM audit_record WHERE chain_seq IS NULL), "
         "(SELECT MAX(log_id) FROM audit_record), 0) WHERE id = 1",
         Done::column_gone, "audit_record", "chain_seq"},
        {"INSERT IGNORE INTO audit_link (log_id, chain_seq, prev_hash, hash) "
         "SELECT log_id, chain_seq, prev_hash, hash FROM audit_record WHERE chain_seq IS NOT NULL",
         Done::column_gone, "audit_record", "chain_seq"},
        {"ALTER TABLE audit_record DROP INDEX audit_by_chain, DROP COLUMN chain_seq, "
         "DROP COLUMN prev_hash, DROP COLUMN hash",
         Done::column_gone, "audit_record", "chain_seq"},
        // A join view takes no INSERT: a replica of version 1 fails its batches loudly
        // instead of writing records around the barrier.
        "CREATE OR REPLACE VIEW audit_log AS SELECT r.log_id, r.operation_type, r.operator, "
        "r.operation_time, r.detail, k.chain_seq, k.prev_hash, k.hash "
        "FROM audit_record r LEFT JOIN audit_link k ON k.log_id = r.log_id",
    },
    {
        // Version 3 (DESIGN.md section 10): deposits' and withdrawals' references and
        // metadata, each account's version after a transaction (0 on older rows), and the
        // indexes a balance at a point in time is found by.
        // Columns added at the end: instant on MySQL 8 and MariaDB 10.3+.
        {"ALTER TABLE transactions ADD COLUMN reference VARBINARY(128) NOT NULL DEFAULT ''",
         Done::column_exists, "transactions", "reference"},
        {"ALTER TABLE transactions ADD COLUMN metadata MEDIUMBLOB NULL", Done::column_exists, "transactions",
         "metadata"},
        {"ALTER TABLE transactions ADD COLUMN source_version_after BIGINT NOT NULL DEFAULT 0",
         Done::column_exists, "transactions", "source_version_after"},
        {"ALTER TABLE transactions ADD COLUMN destination_version_after BIGINT NOT NULL DEFAULT 0",
         Done::column_exists, "transactions", "destination_version_after"},
        // A balance at a point in time: one probe per side (MysqlStore::balance_at).
        {"ALTER TABLE transactions ADD INDEX transactions_by_source_time (source_account, status, created_at)",
         Done::index_exists, "transactions", "transactions_by_source_time"},
        {"ALTER TABLE transactions ADD INDEX transactions_by_destination_time "
         "(destination_account, status, created_at)",
         Done::index_exists, "transactions", "transactions_by_destination_time"},
    },
    {
        // Version 4 (DESIGN.md section 10): accounts' type, status, pending amounts and
        // metadata. Columns added at the end: instant on MySQL 8 and MariaDB 10.3+.
        {"ALTER TABLE accounts ADD COLUMN type VARCHAR(16) NOT NULL DEFAULT 'checking'", Done::column_exists,
         "accounts", "type"},
        {"ALTER TABLE accounts ADD COLUMN status VARCHAR(16) NOT NULL DEFAULT 'active'", Done::column_exists,
         "accounts", "status"},
        {"ALTER TABLE accounts ADD COLUMN pending_debits BIGINT NOT NULL DEFAULT 0", Done::column_exists,
         "accounts", "pending_debits"},
        {"ALTER TABLE accounts ADD COLUMN pending_credits BIGINT NOT NULL DEFAULT 0", Done::column_exists,
         "accounts", "pending_credits"},
        {"ALTER TABLE accounts ADD COLUMN metadata MEDIUMBLOB NULL", Done::column_exists, "accounts", "metadata"},
        // The schema gate for replicas of the first release, which check only that the
        // database is not older than they are: they insert transactions without the
        // versions after, which now have no default, so under the strict SQL mode (MySQL
        // 8's and MariaDB's default) each of their postings fails (1364) and a rolling
        // upgrade never mixes rows that know account states with rows that do not.
        "ALTER TABLE transactions ALTER COLUMN source_version_after DROP DEFAULT",
    },
    {
        // Version 5 (DESIGN.md section 10): holds and refunds. A row names the hold it
        // ends or the transaction it refunds, a hold its expiry; a hold's status,
        // captured amount and ender, or a transfer's refunded amount, are the only
        // columns updated after the insert. Columns added at the end: instant.
        {"ALTER TABLE transactions ADD COLUMN hold_id VARBINARY(64) NOT NULL DEFAULT ''", Done::column_exists,
         "transactions", "hold_id"},
        {"ALTER TABLE transactions ADD COLUMN refund_of VARBINARY(64) NOT NULL DEFAULT ''", Done::column_exists,
         "transactions", "refund_of"},
        {"ALTER TABLE transactions ADD COLUMN reason VARBINARY(500) NOT NULL DEFAULT ''", Done::column_exists,
         "transactions", "reason"},
        {"ALTER TABLE transactions ADD COLUMN expires_at BIGINT NOT NULL DEFAULT 0", Done::column_exists,
         "transactions", "expires_at"},
        {"ALTER TABLE transactions ADD COLUMN hold_status VARCHAR(16) NULL", Done::column_exists, "transactions",
         "hold_status"},
        {"ALTER TABLE transactions ADD COLUMN settled_amount BIGINT NOT NULL DEFAULT 0", Done::column_exists,
         "transactions", "settled_amount"},
        {"ALTER TABLE transactions ADD COLUMN settled_by VARBINARY(64) NOT NULL DEFAULT ''", Done::column_exists,
         "transactions", "settled_by"},
        // The sweeper's: pending holds by expiry (every other row sits under NULL).
        {"ALTER TABLE transactions ADD INDEX pending_holds_by_expiry (hold_status, expires_at)",
         Done::index_exists, "transactions", "pending_holds_by_expiry"},
        // The gate for replicas of the previous release: they insert no hold columns,
        // and with no default each of their postings fails (1364), as in version 4.
        "ALTER TABLE transactions ALTER COLUMN settled_by DROP DEFAULT",
    },
    {
        // Version 6 (DESIGN.md section 10, --unique-references): the rails' references a
        // committed deposit or withdrawal took, one owner each (the primary key is the
        // check two replicas cannot both pass). Filled only under the flag.
        "CREATE TABLE IF NOT EXISTS unique_references (reference_key VARBINARY(200) NOT NULL PRIMARY KEY, "
        "transaction_id VARBINARY(64) NOT NULL) ENGINE=InnoDB",
    },
    {
        // Version 7 (DESIGN.md section 11): the change feed. Each batch takes its events'
        // ids from the one counter row, locked last, just before its COMMIT: ids are
        // gapless and commits of events happen in id order (the lock serializes the
        // replicas for that instant only). A database upgraded to it starts its feed at 1.
        "CREATE TABLE IF NOT EXISTS events (id BIGINT NOT NULL PRIMARY KEY, type VARBINARY(40) NOT NULL, "
        "occurred_at BIGINT NOT NULL, body MEDIUMBLOB NOT NULL) ENGINE=InnoDB",
        "CREATE TABLE IF NOT EXISTS event_counter (id TINYINT NOT NULL PRIMARY KEY, last_id BIGINT NOT NULL) "
        "ENGINE=InnoDB",
        "INSERT IGNORE INTO event_counter (id, last_id) VALUES (1, 0)",
    },
    {
        // Version 8: the change feed's relays, each the last event id its target confirmed
        // (retention keeps what follows).
        "CREATE TABLE IF NOT EXISTS relay_positions (name VARBINARY(64) NOT NULL PRIMARY KEY, "
        "position BIGINT NOT NULL, updated_at BIGINT NOT NULL) ENGINE=InnoDB",
    },
    {
        // Version 9 (DESIGN.md section 11, Reports): per account, UTC day and type, what
        // moved its balance, written in each batch's transaction; the history before it
        // summed in once (IGNORE: a second run after a crash adds nothing twice).
        "CREATE TABLE IF NOT EXISTS daily_totals (account VARBINARY(64) NOT NULL, day INT NOT NULL, "
        "type VARBINARY(16) NOT NULL, credits BIGINT NOT NULL, debits BIGINT NOT NULL, count BIGINT NOT NULL, "
        "PRIMARY KEY (account, day, type)) ENGINE=InnoDB",
        "INSERT IGNORE INTO daily_totals (account, day, type, credits, debits, count) "
        "SELECT account, day, type, SUM(credits), SUM(debits), SUM(count) FROM ("
        "SELECT destination_account AS account, created_at DIV 86400000 AS day, type, amount AS credits, "
        "0 AS debits, 1 AS count FROM transactions WHERE status = 'committed' AND type NOT IN ('hold', 'void', "
        "'expire') UNION ALL SELECT source_account, created_at DIV 86400000, type, 0, amount, 1 FROM transactions "
        "WHERE status = 'committed' AND type NOT IN ('hold', 'void', 'expire')) moved GROUP BY account, day, type",
    },
    {
        // Version 10 (GET /reports/volumes): per currency, UTC hour and type, the committed
        // transactions and their amounts, spread over a few slots per hour (each replica's
        // committers write their own) so no row is every batch's; summed on read.
        "CREATE TABLE IF NOT EXISTS volume_totals (currency VARBINARY(8) NOT NULL, hour INT NOT NULL, "
        "type VARBINARY(16) NOT NULL, slot TINYINT NOT NULL, count BIGINT NOT NULL, amount BIGINT NOT NULL, "
        "PRIMARY KEY (currency, hour, type, slot)) ENGINE=InnoDB",
        "INSERT IGNORE INTO volume_totals (currency, hour, type, slot, count, amount) "
        "SELECT currency, created_at DIV 3600000, type, 0, COUNT(*), SUM(amount) FROM transactions "
        "WHERE status = 'committed' GROUP BY currency, created_at DIV 3600000, type",
    },
    {
        // Version 11 (DESIGN.md section 11, risk rules): the decision recorded with a row
        // and the rule that made it. Columns added at the end: instant. GET
        // /holds?reviewRule= reads pending holds by pending_holds_by_expiry.
        {"ALTER TABLE transactions ADD COLUMN risk_decision VARBINARY(8) NOT NULL DEFAULT ''", Done::column_exists,
         "transactions", "risk_decision"},
        {"ALTER TABLE transactions ADD COLUMN risk_rule VARBINARY(64) NOT NULL DEFAULT ''", Done::column_exists,
         "transactions", "risk_rule"},
        // The gate for replicas of the previous release, as in versions 4 and 5: they know
        // no rules, would let a review hold's payee capture it and read risk_denied as an
        // unknown code; with no default each of their postings fails (1364).
        "ALTER TABLE transactions ALTER COLUMN risk_decision DROP DEFAULT",
    },
}};

// Whether `step` already ran (see MigrationStep).
Result<bool> already_done(Connection& c, const MigrationStep& step) {
  if (step.done_when == Done::never) return false;
  std::string sql = step.done_when == Done::table_exists   ? "SELECT COUNT(*) FROM information_schema.tables"
                    : step.done_when == Done::index_exists ? "SELECT COUNT(*) FROM information_schema.statistics"
                                                           : "SELECT COUNT(*) FROM information_schema.columns";
  sql += " WHERE table_schema = DATABASE() AND table_name = ";
  c.append_quoted(sql, step.table);
  if (step.done_when == Done::index_exists) {
    sql += " AND index_name = ";
    c.append_quoted(sql, step.column);
  } else if (step.done_when != Done::table_exists) {
    sql += " AND column_name = ";
    c.append_quoted(sql, step.column);
  }
  auto rows = c.query(sql);
  if (!rows.ok()) return rows.error();
  const bool found = rows.value().next() && rows.value().int64(0) > 0;
  return step.done_when == Done::column_gone ? !found : found;
}

}  // namespace

namespace mysql {

Result<int> read_schema_version(Connection& c) {
  auto rows = c.query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  if (!rows.ok()) {
    // No table yet: a database never migrated.
    if (mysql::is_missing_table(c.last_error())) return 0;
    return rows.error();
  }
  if (!rows.value().next()) return 0;
  return static_cast<int>(rows.value().int64(0));
}

}  // namespace mysql

int mysql_schema_version() { return static_cast<int>(kMigrations.size()); }

Result<std::pair<int, int>> migrate_mysql(const mysql::ConnectionConfig& config, int target_version) {
  auto opened = Connection::open(config);
  if (!opened.ok()) return opened.error();
  Connection& c = *opened.value();
  if (auto s = c.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INT NOT NULL "
                      "PRIMARY KEY, applied_at BIGINT NOT NULL) ENGINE=InnoDB");
      !s.ok()) {
    return s.error();
  }
  // One migrator at a time, across processes.
  auto locked = c.query("SELECT GET_LOCK('balanced.migrate', 60)");
  if (!locked.ok()) return locked.error();
  if (!locked.value().next() || locked.value().int64(0) != 1) {
    return Error{Code::unavailable, "another process holds the migration lock"};
  }
  auto before = mysql::read_schema_version(c);
  if (!before.ok()) return before.error();
  int version = before.value();
  if (target_version < version || target_version > mysql_schema_version()) {
    return Error{Code::invalid_request, "cannot migrate from schema version " + std::to_string(version) +
                                            " to " + std::to_string(target_version)};
  }
  for (; version < target_version; ++version) {
    for (const MigrationStep& step : kMigrations[static_cast<size_t>(version)]) {
      auto done = already_done(c, step);
      if (!done.ok()) return done.error();
      if (done.value()) continue;
      if (auto s = c.exec(step.sql); !s.ok()) return s.error();
    }
    if (auto s = c.exec("INSERT INTO schema_migrations (version, applied_at) VALUES (" +
                        std::to_string(version + 1) + ", UNIX_TIMESTAMP())");
        !s.ok()) {
      return s.error();
    }
  }
  (void)c.exec("DO RELEASE_LOCK('balanced.migrate')");
  return std::pair{before.value(), version};
}

}  // namespace balanced::storage
