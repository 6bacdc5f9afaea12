#include "storage/mysql/mysql_store.h"

#include <array>
#include <atomic>
#include <cassert>
#include <chrono>
#include <limits>

#include "core/audit.h"
#include "storage/batch.h"
#include "storage/rows.h"

namespace balanced::storage {

using mysql::Connection;
using mysql::Pool;
using mysql::Rows;

namespace {

// One statement of a migration. MySQL commits DDL implicitly, so a migration that
// crashed halfway runs again from its first statement: each statement is re-runnable as
// written, or says by `done_when` how to see that it already ran.
struct MigrationStep {
  enum class DoneWhen { never, table_exists, column_exists, column_gone };
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
const std::array<std::vector<MigrationStep>, 2> kMigrations{{
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
}};

// Whether `step` already ran (see MigrationStep).
Result<bool> already_done(Connection& c, const MigrationStep& step) {
  if (step.done_when == Done::never) return false;
  std::string sql = step.done_when == Done::table_exists
                        ? "SELECT COUNT(*) FROM information_schema.tables"
                        : "SELECT COUNT(*) FROM information_schema.columns";
  sql += " WHERE table_schema = DATABASE() AND table_name = ";
  c.append_quoted(sql, step.table);
  if (step.done_when != Done::table_exists) {
    sql += " AND column_name = ";
    c.append_quoted(sql, step.column);
  }
  auto rows = c.query(sql);
  if (!rows.ok()) return rows.error();
  const bool found = rows.value().next() && rows.value().int64(0) > 0;
  return step.done_when == Done::column_gone ? !found : found;
}

constexpr const char* kTransactionInsertColumns =
    "transaction_id, type, source_account, destination_account, amount, currency, status, "
    "reject_code, source_balance_after, destination_balance_after, request_hash, "
    "client_timestamp, created_at";
constexpr const char* kAuditColumns = "operation_type, operator, operation_time, detail";
constexpr const char* kAuditBarrierShared = "SELECT id FROM audit_barrier WHERE id = 1 LOCK IN SHARE MODE";

void append_int(std::string& sql, int64_t value) { sql += std::to_string(value); }

// "(a, b, c)" of quoted values: the IN list of a chunk.
template <typename Range>
void append_in_list(Connection& c, std::string& sql, const Range& values) {
  sql.push_back('(');
  bool first = true;
  for (const auto& value : values) {
    if (!first) sql.push_back(',');
    first = false;
    c.append_quoted(sql, value);
  }
  sql.push_back(')');
}

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

std::vector<std::string> session_statements(int lock_wait_timeout_s, bool autocommit) {
  return {
      "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
      "SET SESSION innodb_lock_wait_timeout = " + std::to_string(lock_wait_timeout_s),
      std::string("SET SESSION autocommit = ") + (autocommit ? "1" : "0"),
  };
}

// One batch inside one open database transaction on a committer connection.
class MysqlBatch final : public BatchTransaction {
 public:
  // Without `look_up_ids` the batch assumes every transaction id is new and lets the
  // unique key catch a repeated one (the caller then runs the batch again with it).
  MysqlBatch(Connection& c, size_t rows_max, bool consecutive_ids, bool look_up_ids,
             ApplyTimings& timings)
      : c_(c),
        rows_max_(rows_max),
        consecutive_ids_(consecutive_ids),
        look_up_ids_(look_up_ids),
        timings_(timings) {}

  Status load_accounts(std::span<const std::string> numbers, core::LedgerState& state) override {
    // Chunks in sorted order keep the lock order sorted.
    for (size_t start = 0; start < numbers.size(); start += rows_max_) {
      const auto chunk = numbers.subspan(start, std::min(rows_max_, numbers.size() - start));
      std::string sql = std::string("SELECT ") + kAccountColumns +
                        " FROM accounts WHERE account_number IN ";
      append_in_list(c_, sql, chunk);
      sql += " ORDER BY account_number FOR UPDATE";
      auto rows = c_.query(sql);
      if (!rows.ok()) return Status(rows.error());
      while (rows.value().next()) {
        core::Account account = read_account(rows.value());
        state.accounts.emplace(account.number, std::move(account));
      }
    }
    return {};
  }

  Status load_transactions(std::span<const std::string> ids, core::LedgerState& state) override {
    if (!look_up_ids_) return {};
    for (size_t start = 0; start < ids.size(); start += rows_max_) {
      const auto chunk = ids.subspan(start, std::min(rows_max_, ids.size() - start));
      std::string sql = std::string("SELECT ") + kTransactionColumns +
                        " FROM transactions WHERE transaction_id IN ";
      append_in_list(c_, sql, chunk);
      auto rows = c_.query(sql);
      if (!rows.ok()) return Status(rows.error());
      while (rows.value().next()) {
        core::Transaction t = read_transaction(rows.value());
        state.existing.emplace(t.id, std::move(t));
      }
    }
    return {};
  }

  // Two round trips: the account and transaction rows, then (details rendered with the
  // sequences the first assigned) the audit records and the COMMIT.
  Status write(core::BatchEffects& effects) override {
    std::vector<Step> steps;
    add_insert_accounts(effects.created, steps);
    add_update_accounts(effects.updated, steps);
    add_insert_transactions(effects.transactions, steps);
    if (auto s = run(steps, effects.transactions); !s.ok()) return s;
    core::render_audit_details(effects.audit, effects.transactions);
    steps.clear();
    add_insert_audit(effects.audit, steps);
    steps.push_back(Step{"COMMIT", Step::Kind::plain, 0, 0});
    const auto durable_from = std::chrono::steady_clock::now();
    Status committed = run(steps, effects.transactions);
    timings_.durable_seconds = seconds_since(durable_from);
    return committed;
  }

 private:
  // One statement of a multi-statement round trip, and what its result means.
  struct Step {
    std::string sql;
    enum class Kind { plain, update_accounts, insert_transactions } kind;
    size_t start;  // the rows of the effects it writes
    size_t end;
  };

  Status run(const std::vector<Step>& steps, std::vector<core::Transaction>& transactions) {
    if (steps.empty()) return {};
    std::string sql;
    for (const auto& step : steps) {
      if (!sql.empty()) sql.push_back(';');
      sql += step.sql;
    }
    auto results = c_.exec_many(sql);
    if (!results.ok()) return Status(results.error());
    if (results.value().size() != steps.size()) {
      return Status(Code::internal, "expected " + std::to_string(steps.size()) + " results");
    }
    for (size_t i = 0; i < steps.size(); ++i) {
      const Step& step = steps[i];
      const auto& result = results.value()[i];
      // An upsert reports 2 per updated row (1 per inserted one): every row must have
      // existed, locked by this batch.
      if (step.kind == Step::Kind::update_accounts &&
          result.affected_rows != 2 * (step.end - step.start)) {
        return Status(Code::internal, "updated accounts: " + std::to_string(result.affected_rows) +
                                          " rows affected, expected " +
                                          std::to_string(2 * (step.end - step.start)));
      }
      if (step.kind == Step::Kind::insert_transactions) {
        if (auto s = assign_sequences(transactions, step.start, step.end, result.insert_id); !s.ok()) {
          return s;
        }
      }
    }
    return {};
  }

  void add_insert_accounts(const std::vector<core::Account>& accounts, std::vector<Step>& steps) {
    for (size_t start = 0; start < accounts.size(); start += rows_max_) {
      const size_t end = std::min(accounts.size(), start + rows_max_);
      std::string sql = std::string("INSERT INTO accounts (") + kAccountColumns + ") VALUES ";
      append_account_rows(accounts, start, end, sql);
      steps.push_back(Step{std::move(sql), Step::Kind::plain, start, end});
    }
  }

  void append_account_rows(const std::vector<core::Account>& accounts, size_t start, size_t end,
                           std::string& sql) {
    for (size_t i = start; i < end; ++i) {
      const auto& a = accounts[i];
      sql += i == start ? "(" : ",(";
      c_.append_quoted(sql, a.number);
      sql.push_back(',');
      c_.append_quoted(sql, a.currency);
      for (int64_t v : {a.balance, a.overdraft_limit, a.version, a.created_at_ms, a.updated_at_ms}) {
        sql.push_back(',');
        append_int(sql, v);
      }
      sql.push_back(')');
    }
  }

  // Every changed account gets its final balance and version in one multi-row statement:
  // an upsert whose rows all exist (the batch holds their locks), so each only updates.
  // (One VALUES list parses and plans once; a derived table of N SELECTs, N times.)
  void add_update_accounts(const std::vector<core::Account>& accounts, std::vector<Step>& steps) {
    for (size_t start = 0; start < accounts.size(); start += rows_max_) {
      const size_t end = std::min(accounts.size(), start + rows_max_);
      std::string sql = std::string("INSERT INTO accounts (") + kAccountColumns + ") VALUES ";
      append_account_rows(accounts, start, end, sql);
      sql += " ON DUPLICATE KEY UPDATE balance = VALUES(balance), version = VALUES(version), "
             "updated_at = VALUES(updated_at)";
      steps.push_back(Step{std::move(sql), Step::Kind::update_accounts, start, end});
    }
  }

  void add_insert_transactions(const std::vector<core::Transaction>& transactions,
                               std::vector<Step>& steps) {
    for (size_t start = 0; start < transactions.size(); start += rows_max_) {
      const size_t end = std::min(transactions.size(), start + rows_max_);
      // The database assigns the sequence.
      std::string sql =
          std::string("INSERT INTO transactions (") + kTransactionInsertColumns + ") VALUES ";
      for (size_t i = start; i < end; ++i) {
        const auto& t = transactions[i];
        sql += i == start ? "(" : ",(";
        c_.append_quoted(sql, t.id);
        sql.push_back(',');
        c_.append_quoted(sql, core::type_name(t.type));
        sql.push_back(',');
        c_.append_quoted(sql, t.source);
        sql.push_back(',');
        c_.append_quoted(sql, t.destination);
        sql.push_back(',');
        append_int(sql, t.amount);
        sql.push_back(',');
        c_.append_quoted(sql, t.currency);
        sql.push_back(',');
        c_.append_quoted(sql, core::status_name(t.status));
        sql.push_back(',');
        if (t.reject_code == Code::ok) {
          sql += "NULL";
        } else {
          c_.append_quoted(sql, code_name(t.reject_code));
        }
        sql.push_back(',');
        append_int(sql, t.source_balance_after);
        sql.push_back(',');
        append_int(sql, t.destination_balance_after);
        sql.push_back(',');
        c_.append_quoted(sql, t.request_hash);
        sql.push_back(',');
        c_.append_quoted(sql, t.client_timestamp);
        sql.push_back(',');
        append_int(sql, t.created_at_ms);
        sql.push_back(')');
      }
      steps.push_back(Step{std::move(sql), Step::Kind::insert_transactions, start, end});
    }
  }

  // With innodb_autoinc_lock_mode 0 or 1 a multi-row INSERT gets consecutive ids from
  // the first one; in mode 2 (MySQL 8's default) they may interleave with another
  // writer's, so they are read back.
  Status assign_sequences(std::vector<core::Transaction>& transactions, size_t start, size_t end,
                          uint64_t first_id) {
    if (consecutive_ids_) {
      for (size_t i = start; i < end; ++i) {
        transactions[i].sequence = static_cast<int64_t>(first_id) + static_cast<int64_t>(i - start);
      }
      return {};
    }
    std::string sql = "SELECT sequence, transaction_id FROM transactions WHERE transaction_id IN (";
    for (size_t i = start; i < end; ++i) {
      if (i > start) sql.push_back(',');
      c_.append_quoted(sql, transactions[i].id);
    }
    sql.push_back(')');
    auto rows = c_.query(sql);
    if (!rows.ok()) return Status(rows.error());
    std::unordered_map<std::string, int64_t> sequences;
    while (rows.value().next()) sequences.emplace(rows.value().text(1), rows.value().int64(0));
    for (size_t i = start; i < end; ++i) {
      auto it = sequences.find(transactions[i].id);
      if (it == sequences.end()) return Status(Code::internal, "inserted transaction not found");
      transactions[i].sequence = it->second;
    }
    return {};
  }

  // The share lock on the barrier comes first and is held to the COMMIT: the sealer,
  // once it holds the barrier alone, knows every record id handed out so far is
  // committed or rolled back (MysqlStore::seal_audit).
  void add_insert_audit(const std::vector<core::AuditRecord>& audit, std::vector<Step>& steps) {
    if (audit.empty()) return;
    steps.push_back(Step{kAuditBarrierShared, Step::Kind::plain, 0, 0});
    for (size_t start = 0; start < audit.size(); start += rows_max_) {
      const size_t end = std::min(audit.size(), start + rows_max_);
      std::string sql = std::string("INSERT INTO audit_record (") + kAuditColumns + ") VALUES ";
      for (size_t i = start; i < end; ++i) {
        const auto& r = audit[i];
        sql += i == start ? "(" : ",(";
        c_.append_quoted(sql, r.operation_type);
        sql.push_back(',');
        c_.append_quoted(sql, r.operator_name);
        sql.push_back(',');
        append_int(sql, r.operation_time_ms);
        sql.push_back(',');
        c_.append_quoted(sql, r.detail);
        sql.push_back(')');
      }
      steps.push_back(Step{std::move(sql), Step::Kind::plain, start, end});
    }
  }

  Connection& c_;
  const size_t rows_max_;
  const bool consecutive_ids_;
  const bool look_up_ids_;
  ApplyTimings& timings_;
};

}  // namespace

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
  auto before = read_schema_version(c);
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

// The readers' connections: the reads' own bound on a silent database.
static mysql::ConnectionConfig reader_config(const MysqlOptions& o) {
  mysql::ConnectionConfig config = o.connection;
  config.read_timeout_s = std::max(1u, o.reader_timeout_s);
  config.write_timeout_s = std::max(1u, o.reader_timeout_s);
  return config;
}

struct MysqlStore::Impl {
  explicit Impl(const MysqlOptions& o)
      : options(o),
        readers(reader_config(o), o.read_connections_max,
                std::chrono::milliseconds(o.pool_wait_ms_max),
                session_statements(o.lock_wait_timeout_s, true)),
        committers(o.connection, o.committer_connections,
                   std::chrono::milliseconds(o.pool_wait_ms_max),
                   session_statements(o.lock_wait_timeout_s, false)),
        sealer(o.connection, 1, std::chrono::milliseconds(o.pool_wait_ms_max),
               session_statements(o.lock_wait_timeout_s, false)) {}

  // Learns, once, whether multi-row inserts get consecutive ids on this server.
  Status learn_server(Connection& c) {
    if (server_known.load(std::memory_order_acquire)) return {};
    auto rows = c.query("SELECT @@innodb_autoinc_lock_mode");
    if (!rows.ok()) return Status(rows.error());
    const int64_t mode = rows.value().next() ? rows.value().int64(0) : 2;
    consecutive_ids.store(mode <= 1, std::memory_order_relaxed);
    server_known.store(true, std::memory_order_release);
    return {};
  }

  Status check_schema(Connection& c) {
    if (schema_current.load(std::memory_order_acquire)) return {};
    auto version = read_schema_version(c);
    if (!version.ok()) return version.status();
    if (version.value() < mysql_schema_version()) {
      return Status(Code::unavailable,
                    "database schema version " + std::to_string(version.value()) +
                        " is older than this build's " + std::to_string(mysql_schema_version()) +
                        ": run `balancectl migrate`");
    }
    schema_current.store(true, std::memory_order_release);
    return {};
  }

  template <typename Read>
  auto read_one(std::string sql, std::string_view key, Error missing, Read read)
      -> Result<decltype(read(std::declval<const Rows&>()))>;

  const MysqlOptions options;
  Pool readers;
  Pool committers;
  Pool sealer;  // its own connection: sealing never takes one from the committers
  std::atomic<bool> server_known{false};
  std::atomic<bool> consecutive_ids{false};
  std::atomic<bool> schema_current{false};
  // The sealer's (seal_audit): the largest record id known final, and the watermark
  // this process last stored.
  std::atomic<int64_t> final_log_id{0};
  std::atomic<int64_t> linked_log_id{0};
};

Result<std::unique_ptr<MysqlStore>> open_mysql_store(const MysqlOptions& options) {
  if (options.committer_connections == 0 || options.read_connections_max == 0 ||
      options.rows_per_statement_max == 0) {
    return Error{Code::invalid_request, "MySQL pool sizes and row bounds must be positive"};
  }
  return std::unique_ptr<MysqlStore>(new MysqlStore(std::make_unique<MysqlStore::Impl>(options)));
}

MysqlStore::MysqlStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MysqlStore::~MysqlStore() = default;

size_t MysqlStore::apply_concurrency() const { return impl_->options.committer_connections; }

Result<core::BatchEffects> MysqlStore::apply(std::span<const core::Operation> operations,
                                             int64_t now_ms, ApplyTimings& timings) {
  auto lease = impl_->committers.acquire();
  if (!lease.ok()) return lease.error();
  Connection& c = *lease.value();
  if (auto s = impl_->check_schema(c); !s.ok()) return s.error();
  if (auto s = impl_->learn_server(c); !s.ok()) return s.error();
  // Optimistic first: almost every transaction id is new, so the batch skips the
  // idempotency lookup and lets the unique key catch a repeated id (a client retry, or a
  // replica that committed the same id first). Then it runs again, looking every id up.
  const bool consecutive = impl_->consecutive_ids.load(std::memory_order_relaxed);
  auto attempt = [&](bool look_up_ids) {
    MysqlBatch batch(c, impl_->options.rows_per_statement_max, consecutive, look_up_ids, timings);
    // On success the batch has committed (its last round trip ends with COMMIT).
    auto effects = run_batch(batch, operations, now_ms);
    if (!effects.ok() && !c.exec("ROLLBACK").ok()) c.discard();
    return effects;
  };
  auto effects = attempt(false);
  if (!effects.ok() && !c.broken() && mysql::is_duplicate_key(c.last_error())) {
    effects = attempt(true);
  }
  return effects;
}

// Runs `sql` + the quoted key on a reader connection: the first row, read by `read`, or
// `missing` when there is none.
template <typename Read>
auto MysqlStore::Impl::read_one(std::string sql, std::string_view key, Error missing, Read read)
    -> Result<decltype(read(std::declval<const Rows&>()))> {
  auto lease = readers.acquire();
  if (!lease.ok()) return lease.error();
  lease.value()->append_quoted(sql, key);
  auto rows = lease.value()->query(sql);
  if (!rows.ok()) return rows.error();
  if (!rows.value().next()) return missing;
  return read(rows.value());
}

Result<core::Account> MysqlStore::account(std::string_view number) {
  return impl_->read_one(
      std::string("SELECT ") + kAccountColumns + " FROM accounts WHERE account_number = ",
      number, Error{Code::account_not_found, "account " + std::string(number) + " does not exist"},
      read_account<Rows>);
}

Result<core::Transaction> MysqlStore::transaction(std::string_view id) {
  return impl_->read_one(
      std::string("SELECT ") + kTransactionColumns + " FROM transactions WHERE transaction_id = ",
      id, Error{Code::not_found, "transaction " + std::string(id) + " does not exist"},
      read_transaction<Rows>);
}

Result<HistoryPage> MysqlStore::history(std::string_view number,
                                        std::optional<int64_t> before_sequence, size_t limit) {
  assert(limit > 0 && limit <= history_limit_max);
  auto exists = account(number);
  if (!exists.ok()) return exists.error();
  auto lease = impl_->readers.acquire();
  if (!lease.ok()) return lease.error();
  Connection& c = *lease.value();
  const int64_t before = before_sequence.value_or(std::numeric_limits<int64_t>::max());
  // Each side walks its index newest first; the union takes the newest of both.
  std::string sql;
  for (const char* side : {"source_account", "destination_account"}) {
    sql += sql.empty() ? "SELECT * FROM ((SELECT " : " UNION ALL (SELECT ";
    sql += kTransactionColumns;
    sql += " FROM transactions WHERE ";
    sql += side;
    sql += " = ";
    c.append_quoted(sql, number);
    sql += " AND sequence < " + std::to_string(before) +
           " AND status = 'committed' ORDER BY sequence DESC LIMIT " +
           std::to_string(limit + 1) + ")";
  }
  sql += ") AS page ORDER BY sequence DESC LIMIT " + std::to_string(limit + 1);
  auto rows = c.query(sql);
  if (!rows.ok()) return rows.error();
  HistoryPage page;
  while (rows.value().next()) page.transactions.push_back(read_transaction(rows.value()));
  if (page.transactions.size() > limit) {
    page.transactions.resize(limit);
    page.next_cursor = page.transactions.back().sequence;
  }
  return page;
}

Status MysqlStore::ping() {
  auto lease = impl_->readers.acquire();
  if (!lease.ok()) return Status(lease.error());
  impl_->schema_current.store(false, std::memory_order_release);  // look again
  return impl_->check_schema(*lease.value());
}

Status MysqlStore::scan(ScanVisitor& visitor) {
  auto opened = Connection::open(impl_->options.connection);
  if (!opened.ok()) return Status(opened.error());
  Connection& c = *opened.value();
  // One snapshot for the three scans, so that the sums balance while writers go on.
  if (auto s = c.exec("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"); !s.ok()) return s;
  if (auto s = c.exec("START TRANSACTION WITH CONSISTENT SNAPSHOT"); !s.ok()) return s;
  Status status = c.for_each_row(std::string("SELECT ") + kAccountColumns + " FROM accounts",
                                 [&](const Rows& r) { visitor.account(read_account(r)); });
  if (status.ok()) {
    status = c.for_each_row(std::string("SELECT ") + kTransactionColumns +
                                " FROM transactions WHERE status = 'committed' ORDER BY sequence",
                            [&](const Rows& r) { visitor.transaction(read_transaction(r)); });
  }
  if (status.ok()) {
    status = c.for_each_row(
        // From the links: a linked record that was deleted reads as empty, and its hash
        // no longer matches.
        "SELECT k.chain_seq, COALESCE(r.operation_type, ''), COALESCE(r.operator, ''), "
        "COALESCE(r.operation_time, 0), COALESCE(r.detail, ''), k.prev_hash, k.hash "
        "FROM audit_link k LEFT JOIN audit_record r ON r.log_id = k.log_id ORDER BY k.chain_seq",
        [&](const Rows& r) {
          visitor.audit(core::AuditRecord{.log_id = r.int64(0),
                                          .operation_type = r.text(1),
                                          .operator_name = r.text(2),
                                          .operation_time_ms = r.int64(3),
                                          .detail = r.text(4),
                                          .prev_hash = r.text(5),
                                          .hash = r.text(6)});
        });
  }
  (void)c.exec("COMMIT");
  return status;
}

// Two transactions. The first takes the barrier row alone, in one round trip (so the
// lock never waits on this process), when the bound it learnt last is used up: every batch share-locks it before it writes audit
// records and holds it to its COMMIT, so once the sealer has it, every record id handed
// out so far belongs to a batch that committed or rolled back, and the largest committed
// id bounds what can be sealed in order. New batches wait for the barrier only while
// the batches already writing commit. The second transaction links the records between
// the watermark and that bound, in id order, appending rows to `audit_link`: no record
// is rewritten.
Result<SealResult> MysqlStore::seal_audit(int64_t fence, size_t records_max) {
  auto lease = impl_->sealer.acquire();
  if (!lease.ok()) return lease.error();
  Connection& c = *lease.value();
  if (auto s = impl_->check_schema(c); !s.ok()) return s.error();
  auto run = [&]() -> Result<SealResult> {
    // A bound stays true once learnt, so the barrier is taken only when the records
    // below the last bound are all linked: once per run of the job, not per call.
    int64_t final_log_id = impl_->final_log_id.load(std::memory_order_relaxed);
    if (final_log_id <= impl_->linked_log_id.load(std::memory_order_relaxed)) {
      if (auto s = c.exec_many(
              "SELECT id FROM audit_barrier WHERE id = 1 FOR UPDATE;"
              "SELECT COALESCE(MAX(log_id), 0) INTO @balanced_final_log_id FROM audit_record;"
              "COMMIT");
          !s.ok()) {
        return s.error();
      }
      auto bound_rows = c.query("SELECT @balanced_final_log_id");
      if (!bound_rows.ok()) return bound_rows.error();
      final_log_id = bound_rows.value().next() ? bound_rows.value().int64(0) : 0;
      impl_->final_log_id.store(final_log_id, std::memory_order_relaxed);
    }

    auto head_rows =
        c.query("SELECT sealed_seq, head, fence, linked_log_id FROM audit_chain WHERE id = 1 FOR UPDATE");
    if (!head_rows.ok()) return head_rows.error();
    Rows& head_row = head_rows.value();
    if (!head_row.next()) return Error{Code::internal, "audit_chain has no head row"};
    SealResult result{.sealed = 0, .chain_head = head_row.int64(0)};
    std::string head = head_row.text(1);
    if (head_row.int64(2) > fence) {
      return Error{Code::forbidden, "fencing token " + std::to_string(fence) +
                                        " is older than " + std::to_string(head_row.int64(2))};
    }
    const int64_t linked_from = head_row.int64(3);
    // Records above the watermark already linked were sealed before version 2.
    auto pending = c.query(
        "SELECT r.log_id, r.operation_type, r.operator, r.operation_time, r.detail "
        "FROM audit_record r WHERE r.log_id > " + std::to_string(linked_from) +
        " AND r.log_id <= " + std::to_string(final_log_id) +
        " AND NOT EXISTS (SELECT 1 FROM audit_link k WHERE k.log_id = r.log_id) "
        "ORDER BY r.log_id LIMIT " + std::to_string(records_max));
    if (!pending.ok()) return pending.error();
    std::vector<std::pair<int64_t, core::AuditRecord>> records;
    while (pending.value().next()) {
      const Rows& r = pending.value();
      records.emplace_back(r.int64(0), core::AuditRecord{.operation_type = r.text(1),
                                                         .operator_name = r.text(2),
                                                         .operation_time_ms = r.int64(3),
                                                         .detail = r.text(4)});
    }
    // Below the bound every id is final: past the last record read (or, with fewer
    // than records_max, the whole way) nothing is left to link.
    const int64_t linked_to =
        !records.empty() && records.size() == records_max ? records.back().first : final_log_id;
    const int64_t watermark = std::max(linked_from, linked_to);
    for (size_t start = 0; start < records.size(); start += impl_->options.rows_per_statement_max) {
      const size_t end = std::min(records.size(), start + impl_->options.rows_per_statement_max);
      std::string sql = "INSERT INTO audit_link (log_id, chain_seq, prev_hash, hash) VALUES ";
      for (size_t i = start; i < end; ++i) {
        auto& [log_id, record] = records[i];
        head = core::chain_audit_record(record, head);
        ++result.chain_head;
        sql += i == start ? "(" : ",(";
        sql += std::to_string(log_id) + "," + std::to_string(result.chain_head) + ",";
        Connection::append_hex(sql, record.prev_hash);
        sql.push_back(',');
        Connection::append_hex(sql, record.hash);
        sql.push_back(')');
      }
      if (auto s = c.exec(sql); !s.ok()) return s.error();
    }
    std::string update = "UPDATE audit_chain SET sealed_seq = " +
                         std::to_string(result.chain_head) + ", head = ";
    Connection::append_hex(update, head);
    update += ", fence = " + std::to_string(fence) +
              ", linked_log_id = " + std::to_string(watermark) + " WHERE id = 1";
    if (auto s = c.exec(update); !s.ok()) return s.error();
    if (auto s = c.exec("COMMIT"); !s.ok()) {
      c.discard();
      return s.error();
    }
    impl_->linked_log_id.store(watermark, std::memory_order_relaxed);
    result.sealed = static_cast<int64_t>(records.size());
    return result;
  };
  auto result = run();
  if (!result.ok() && !c.exec("ROLLBACK").ok()) c.discard();
  return result;
}

// Cheap enough for every run of the job: only the records above the watermark.
Result<int64_t> MysqlStore::unsealed_audit_records() {
  auto lease = impl_->readers.acquire();
  if (!lease.ok()) return lease.error();
  auto rows = lease.value()->query(
      "SELECT COUNT(*) FROM audit_record r "
      "WHERE r.log_id > (SELECT linked_log_id FROM audit_chain WHERE id = 1) "
      "AND NOT EXISTS (SELECT 1 FROM audit_link k WHERE k.log_id = r.log_id)");
  if (!rows.ok()) return rows.error();
  return rows.value().next() ? rows.value().int64(0) : 0;
}

Result<std::optional<bool>> MysqlStore::synchronous_replica() {
  auto lease = impl_->readers.acquire();
  if (!lease.ok()) return lease.error();
  // MariaDB's names, and MySQL 8.0.26+'s (source); a server with neither has no semi-sync.
  auto rows = lease.value()->query(
      "SELECT LOWER(VARIABLE_NAME), VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES "
      "WHERE VARIABLE_NAME IN ('RPL_SEMI_SYNC_MASTER_ENABLED', 'RPL_SEMI_SYNC_SOURCE_ENABLED') "
      "UNION ALL SELECT LOWER(VARIABLE_NAME), VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS "
      "WHERE VARIABLE_NAME IN ('RPL_SEMI_SYNC_MASTER_STATUS', 'RPL_SEMI_SYNC_SOURCE_STATUS')");
  if (!rows.ok()) return rows.error();
  bool enabled = false;
  bool on = false;
  while (rows.value().next()) {
    const std::string_view name = rows.value().view(0);
    const bool value = rows.value().view(1) == "ON";
    if (name.ends_with("_enabled")) enabled = enabled || value;
    if (name.ends_with("_status")) on = on || value;
  }
  if (!enabled) return std::optional<bool>();
  return std::optional<bool>(on);
}

}  // namespace balanced::storage
