#include "storage/sqlite/sqlite_store.h"

#include <sqlite3.h>

#include <array>
#include <cassert>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "storage/batch.h"

namespace balanced::storage {
namespace {

// Versioned migrations: entry i takes the schema from version i to i + 1. Never edit an
// entry that has shipped; append a new one.
constexpr std::array<const char*, 1> kMigrations{
    R"sql(
CREATE TABLE accounts (
  id INTEGER PRIMARY KEY,
  account_number TEXT NOT NULL UNIQUE,
  currency TEXT NOT NULL,
  balance INTEGER NOT NULL,
  overdraft_limit INTEGER NOT NULL,
  version INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE transactions (
  sequence INTEGER PRIMARY KEY,
  transaction_id TEXT NOT NULL UNIQUE,
  type TEXT NOT NULL,
  source_account TEXT NOT NULL,
  destination_account TEXT NOT NULL,
  amount INTEGER NOT NULL,
  currency TEXT NOT NULL,
  status TEXT NOT NULL,
  reject_code TEXT,
  source_balance_after INTEGER NOT NULL,
  destination_balance_after INTEGER NOT NULL,
  request_hash TEXT NOT NULL,
  client_timestamp TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX transactions_by_source ON transactions (source_account, sequence);
CREATE INDEX transactions_by_destination ON transactions (destination_account, sequence);
CREATE TABLE audit_log (
  log_id INTEGER PRIMARY KEY,
  operation_type TEXT NOT NULL,
  operator TEXT NOT NULL,
  operation_time INTEGER NOT NULL,
  detail TEXT NOT NULL,
  prev_hash BLOB NOT NULL,
  hash BLOB NOT NULL
);
)sql",
};

constexpr const char* kAccountColumns =
    "account_number, currency, balance, overdraft_limit, version, created_at, updated_at";
constexpr const char* kTransactionColumns =
    "sequence, transaction_id, type, source_account, destination_account, amount, currency, "
    "status, reject_code, source_balance_after, destination_balance_after, request_hash, "
    "client_timestamp, created_at";

Error sqlite_error(sqlite3* db, int rc, std::string_view what) {
  const int primary = rc & 0xff;
  // Busy, locked, I/O, full disk: transient from the ledger's point of view.
  const bool transient = primary == SQLITE_BUSY || primary == SQLITE_LOCKED ||
                         primary == SQLITE_IOERR || primary == SQLITE_FULL ||
                         primary == SQLITE_CANTOPEN || primary == SQLITE_PROTOCOL;
  std::string detail = std::string(what) + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  return Error{transient ? Code::unavailable : Code::internal, std::move(detail)};
}

class Connection {
 public:
  Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() {
    if (db_ != nullptr) sqlite3_close_v2(db_);
  }

  Status open(const std::string& path, int flags, const SqliteOptions& options) {
    const int rc = sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) return Status(sqlite_error(db_, rc, "open " + path));
    sqlite3_busy_timeout(db_, options.busy_timeout_ms);
    sqlite3_extended_result_codes(db_, 1);
    return {};
  }

  Status exec(const std::string& sql) {
    char* message = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
    if (rc != SQLITE_OK) {
      Error error = sqlite_error(db_, rc, sql.substr(0, 60));
      sqlite3_free(message);
      return Status(std::move(error));
    }
    return {};
  }

  sqlite3* get() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

// A prepared statement, reset after each use by Use.
class Statement {
 public:
  Statement() = default;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() {
    if (stmt_ != nullptr) sqlite3_finalize(stmt_);
  }

  Status prepare(Connection& connection, const std::string& sql) {
    db_ = connection.get();
    const int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
    if (rc != SQLITE_OK) return Status(sqlite_error(db_, rc, "prepare " + sql.substr(0, 60)));
    return {};
  }

  // REQUIRES: the bound text outlives the statement's next reset().
  void bind(int index, int64_t value) { sqlite3_bind_int64(stmt_, index, value); }
  void bind(int index, std::string_view text) {
    sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
  }
  void bind_blob(int index, std::string_view bytes) {
    sqlite3_bind_blob(stmt_, index, bytes.data(), static_cast<int>(bytes.size()), SQLITE_STATIC);
  }
  void bind_null(int index) { sqlite3_bind_null(stmt_, index); }

  // SQLITE_ROW, SQLITE_DONE or an error code.
  int step() { return sqlite3_step(stmt_); }
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  Error error(int rc, std::string_view what) const { return sqlite_error(db_, rc, what); }

  int64_t int64(int column) const { return sqlite3_column_int64(stmt_, column); }
  std::string text(int column) const {
    const auto* data = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
    return data ? std::string(data, static_cast<size_t>(sqlite3_column_bytes(stmt_, column)))
                : std::string();
  }
  std::string blob(int column) const {
    const auto* data = static_cast<const char*>(sqlite3_column_blob(stmt_, column));
    return data ? std::string(data, static_cast<size_t>(sqlite3_column_bytes(stmt_, column)))
                : std::string();
  }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

// Resets a statement when a use of it ends, however it ends.
class Use {
 public:
  explicit Use(Statement& statement) : statement_(statement) {}
  ~Use() { statement_.reset(); }
  Statement* operator->() { return &statement_; }
  Statement& operator*() { return statement_; }

 private:
  Statement& statement_;
};

core::Account read_account(const Statement& s) {
  return core::Account{.number = s.text(0),
                       .currency = s.text(1),
                       .balance = s.int64(2),
                       .overdraft_limit = s.int64(3),
                       .version = s.int64(4),
                       .created_at_ms = s.int64(5),
                       .updated_at_ms = s.int64(6)};
}

core::Transaction read_transaction(const Statement& s) {
  core::Transaction t;
  t.sequence = s.int64(0);
  t.id = s.text(1);
  t.type = core::type_from_name(s.text(2)).value_or(core::TransactionType::transfer);
  t.source = s.text(3);
  t.destination = s.text(4);
  t.amount = s.int64(5);
  t.currency = s.text(6);
  t.status = core::status_from_name(s.text(7)).value_or(core::TransactionStatus::rejected);
  const std::string reject = s.text(8);
  t.reject_code = reject.empty() ? Code::ok : code_from_name(reject);
  t.source_balance_after = s.int64(9);
  t.destination_balance_after = s.int64(10);
  t.request_hash = s.text(11);
  t.client_timestamp = s.text(12);
  t.created_at_ms = s.int64(13);
  return t;
}

Result<int> schema_version(Connection& connection) {
  Statement s;
  if (auto status = s.prepare(connection, "PRAGMA user_version"); !status.ok()) {
    return status.error();
  }
  const int rc = s.step();
  if (rc != SQLITE_ROW) return s.error(rc, "read schema version");
  return static_cast<int>(s.int64(0));
}

Result<std::pair<int, int>> run_migrations(Connection& connection) {
  auto before = schema_version(connection);
  if (!before.ok()) return before.error();
  const int target = static_cast<int>(kMigrations.size());
  if (before.value() > target) {
    return Error{Code::internal, "schema version " + std::to_string(before.value()) +
                                     " is newer than this build's " + std::to_string(target)};
  }
  for (int version = before.value(); version < target; ++version) {
    const std::string sql = std::string("BEGIN IMMEDIATE;") + kMigrations[version] +
                            "PRAGMA user_version = " + std::to_string(version + 1) + ";COMMIT;";
    if (auto status = connection.exec(sql); !status.ok()) {
      (void)connection.exec("ROLLBACK");
      return status.error();
    }
  }
  return std::pair{before.value(), target};
}

}  // namespace

int sqlite_schema_version() { return static_cast<int>(kMigrations.size()); }

// The committer's connection and its statements.
struct WriteConnection {
  Connection db;
  Statement begin, commit, rollback;
  Statement load_account, load_transaction, audit_head;
  Statement insert_account, update_account, insert_transaction, insert_audit;

  Status prepare() {
    const std::string account_select = std::string("SELECT ") + kAccountColumns +
                                       " FROM accounts WHERE account_number = ?1";
    const std::string transaction_select = std::string("SELECT ") + kTransactionColumns +
                                           " FROM transactions WHERE transaction_id = ?1";
    const std::pair<Statement*, std::string> statements[] = {
        {&begin, "BEGIN IMMEDIATE"},
        {&commit, "COMMIT"},
        {&rollback, "ROLLBACK"},
        {&load_account, account_select},
        {&load_transaction, transaction_select},
        {&audit_head, "SELECT hash FROM audit_log ORDER BY log_id DESC LIMIT 1"},
        {&insert_account, std::string("INSERT INTO accounts (") + kAccountColumns +
                              ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"},
        {&update_account,
         "UPDATE accounts SET balance = ?2, version = ?3, updated_at = ?4 "
         "WHERE account_number = ?1"},
        {&insert_transaction,
         "INSERT INTO transactions (transaction_id, type, source_account, destination_account, "
         "amount, currency, status, reject_code, source_balance_after, "
         "destination_balance_after, request_hash, client_timestamp, created_at) VALUES "
         "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"},
        {&insert_audit,
         "INSERT INTO audit_log (operation_type, operator, operation_time, detail, prev_hash, "
         "hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"},
    };
    for (const auto& [statement, sql] : statements) {
      if (auto status = statement->prepare(db, sql); !status.ok()) return status;
    }
    return {};
  }
};

// A reader's connection and its statements.
struct ReadConnection {
  Connection db;
  Statement account, transaction, history;

  Status prepare() {
    const std::string history_sql =
        std::string("SELECT * FROM (SELECT ") + kTransactionColumns +
        " FROM transactions WHERE source_account = ?1 AND sequence < ?2 AND status = "
        "'committed' ORDER BY sequence DESC LIMIT ?3) UNION ALL SELECT * FROM (SELECT " +
        kTransactionColumns +
        " FROM transactions WHERE destination_account = ?1 AND sequence < ?2 AND status = "
        "'committed' ORDER BY sequence DESC LIMIT ?3) ORDER BY sequence DESC LIMIT ?3";
    if (auto s = account.prepare(db, std::string("SELECT ") + kAccountColumns +
                                         " FROM accounts WHERE account_number = ?1");
        !s.ok()) {
      return s;
    }
    if (auto s = transaction.prepare(db, std::string("SELECT ") + kTransactionColumns +
                                             " FROM transactions WHERE transaction_id = ?1");
        !s.ok()) {
      return s;
    }
    return history.prepare(db, history_sql);
  }
};

struct SqliteStore::Impl {
  SqliteOptions options;
  WriteConnection writer;

  std::mutex readers_mutex;
  std::condition_variable reader_returned;
  std::vector<std::unique_ptr<ReadConnection>> idle_readers;  // guarded by readers_mutex
  size_t readers_open = 0;                                     // guarded by readers_mutex

  std::mutex checkpoint_mutex;
  std::condition_variable checkpoint_wake;
  bool stopping = false;  // guarded by checkpoint_mutex
  std::thread checkpointer;

  Status configure(Connection& connection, bool writer_connection) {
    std::string pragmas = "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = OFF;";
    pragmas += options.synchronous_full ? "PRAGMA synchronous = FULL;"
                                        : "PRAGMA synchronous = NORMAL;";
    pragmas += "PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;";
    // The committer never checkpoints; the checkpointer thread does, off the commit path.
    if (writer_connection) pragmas += "PRAGMA wal_autocheckpoint = 0;";
    return connection.exec(pragmas);
  }

  // A read connection from the pool; opens one while fewer than the maximum exist.
  Result<std::unique_ptr<ReadConnection>> acquire_reader() {
    {
      std::unique_lock lock(readers_mutex);
      reader_returned.wait(lock, [&] {
        return !idle_readers.empty() || readers_open < options.read_connections_max;
      });
      if (!idle_readers.empty()) {
        auto reader = std::move(idle_readers.back());
        idle_readers.pop_back();
        return reader;
      }
      ++readers_open;
    }
    auto reader = std::make_unique<ReadConnection>();
    Status status = reader->db.open(options.path, SQLITE_OPEN_READONLY, options);
    if (status.ok()) status = configure(reader->db, false);
    if (status.ok()) status = reader->prepare();
    if (!status.ok()) {
      std::lock_guard lock(readers_mutex);
      --readers_open;
      reader_returned.notify_one();
      return status.error();
    }
    return reader;
  }

  void release_reader(std::unique_ptr<ReadConnection> reader) {
    std::lock_guard lock(readers_mutex);
    idle_readers.push_back(std::move(reader));
    reader_returned.notify_one();
  }

  void run_checkpointer() {
    Connection connection;
    if (!connection.open(options.path, SQLITE_OPEN_READWRITE, options).ok()) return;
    std::unique_lock lock(checkpoint_mutex);
    while (!stopping) {
      checkpoint_wake.wait_for(lock, std::chrono::milliseconds(options.checkpoint_interval_ms));
      lock.unlock();
      int wal_frames = 0;
      int checkpointed = 0;
      sqlite3_wal_checkpoint_v2(connection.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                &wal_frames, &checkpointed);
      lock.lock();
    }
  }
};

namespace {

class SqliteBatch final : public BatchTransaction {
 public:
  explicit SqliteBatch(WriteConnection& w) : w_(w) {}

  Status load_accounts(std::span<const std::string> numbers, core::LedgerState& state) override {
    for (const auto& number : numbers) {
      Use s(w_.load_account);
      s->bind(1, number);
      const int rc = s->step();
      if (rc == SQLITE_ROW) {
        state.accounts.emplace(number, read_account(*s));
      } else if (rc != SQLITE_DONE) {
        return Status(s->error(rc, "load account"));
      }
    }
    return {};
  }

  Status load_transactions(std::span<const std::string> ids, core::LedgerState& state) override {
    for (const auto& id : ids) {
      Use s(w_.load_transaction);
      s->bind(1, id);
      const int rc = s->step();
      if (rc == SQLITE_ROW) {
        state.existing.emplace(id, read_transaction(*s));
      } else if (rc != SQLITE_DONE) {
        return Status(s->error(rc, "load transaction"));
      }
    }
    return {};
  }

  Status load_audit_head(core::LedgerState& state) override {
    Use s(w_.audit_head);
    const int rc = s->step();
    if (rc == SQLITE_ROW) {
      state.audit_head = s->blob(0);
    } else if (rc != SQLITE_DONE) {
      return Status(s->error(rc, "load audit head"));
    }
    return {};
  }

  Status write(core::BatchEffects& effects) override {
    for (const auto& a : effects.created) {
      Use s(w_.insert_account);
      s->bind(1, a.number);
      s->bind(2, a.currency);
      s->bind(3, a.balance);
      s->bind(4, a.overdraft_limit);
      s->bind(5, a.version);
      s->bind(6, a.created_at_ms);
      s->bind(7, a.updated_at_ms);
      if (const int rc = s->step(); rc != SQLITE_DONE) return Status(s->error(rc, "insert account"));
    }
    for (const auto& a : effects.updated) {
      Use s(w_.update_account);
      s->bind(1, a.number);
      s->bind(2, a.balance);
      s->bind(3, a.version);
      s->bind(4, a.updated_at_ms);
      if (const int rc = s->step(); rc != SQLITE_DONE) return Status(s->error(rc, "update account"));
    }
    sqlite3* db = w_.db.get();
    for (auto& t : effects.transactions) {
      Use s(w_.insert_transaction);
      const std::string_view reject =
          t.status == core::TransactionStatus::rejected ? code_name(t.reject_code) : "";
      s->bind(1, t.id);
      s->bind(2, core::type_name(t.type));
      s->bind(3, t.source);
      s->bind(4, t.destination);
      s->bind(5, t.amount);
      s->bind(6, t.currency);
      s->bind(7, core::status_name(t.status));
      if (reject.empty()) {
        s->bind_null(8);
      } else {
        s->bind(8, reject);
      }
      s->bind(9, t.source_balance_after);
      s->bind(10, t.destination_balance_after);
      s->bind(11, t.request_hash);
      s->bind(12, t.client_timestamp);
      s->bind(13, t.created_at_ms);
      if (const int rc = s->step(); rc != SQLITE_DONE) {
        return Status(s->error(rc, "insert transaction"));
      }
      t.sequence = sqlite3_last_insert_rowid(db);
    }
    for (auto& r : effects.audit) {
      Use s(w_.insert_audit);
      s->bind(1, r.operation_type);
      s->bind(2, r.operator_name);
      s->bind(3, r.operation_time_ms);
      s->bind(4, r.detail);
      s->bind_blob(5, r.prev_hash);
      s->bind_blob(6, r.hash);
      if (const int rc = s->step(); rc != SQLITE_DONE) return Status(s->error(rc, "insert audit"));
      r.log_id = sqlite3_last_insert_rowid(db);
    }
    return {};
  }

 private:
  WriteConnection& w_;
};

// Borrows a read connection for the scope of one read.
class Reader {
 public:
  explicit Reader(SqliteStore::Impl& impl) : impl_(impl), reader_(impl.acquire_reader()) {}
  ~Reader() {
    if (reader_.ok()) impl_.release_reader(std::move(reader_.value()));
  }
  bool ok() const { return reader_.ok(); }
  const Error& error() const { return reader_.error(); }
  ReadConnection& operator*() { return *reader_.value(); }

 private:
  SqliteStore::Impl& impl_;
  Result<std::unique_ptr<ReadConnection>> reader_;
};

}  // namespace

Result<std::unique_ptr<SqliteStore>> open_sqlite_store(const SqliteOptions& options) {
  auto impl = std::make_unique<SqliteStore::Impl>();
  impl->options = options;
  Connection& db = impl->writer.db;
  if (auto s = db.open(options.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, options);
      !s.ok()) {
    return s.error();
  }
  if (auto s = impl->configure(db, true); !s.ok()) return s.error();
  if (options.migrate) {
    auto migrated = run_migrations(db);
    if (!migrated.ok()) return migrated.error();
  }
  auto version = schema_version(db);
  if (!version.ok()) return version.error();
  if (version.value() != sqlite_schema_version()) {
    return Error{Code::unavailable, "schema version " + std::to_string(version.value()) +
                                        ", this build needs " +
                                        std::to_string(sqlite_schema_version()) +
                                        ": run `balancectl migrate`"};
  }
  if (auto s = impl->writer.prepare(); !s.ok()) return s.error();
  impl->checkpointer = std::thread([raw = impl.get()] { raw->run_checkpointer(); });
  return std::unique_ptr<SqliteStore>(new SqliteStore(std::move(impl)));
}

Result<std::pair<int, int>> migrate_sqlite(const std::string& path) {
  Connection db;
  SqliteOptions options;
  if (auto s = db.open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, options); !s.ok()) {
    return s.error();
  }
  if (auto s = db.exec("PRAGMA journal_mode = WAL"); !s.ok()) return s.error();
  return run_migrations(db);
}

SqliteStore::SqliteStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SqliteStore::~SqliteStore() {
  {
    std::lock_guard lock(impl_->checkpoint_mutex);
    impl_->stopping = true;
  }
  impl_->checkpoint_wake.notify_all();
  if (impl_->checkpointer.joinable()) impl_->checkpointer.join();
}

Result<core::BatchEffects> SqliteStore::apply(std::span<const core::Operation> operations,
                                              int64_t now_ms) {
  WriteConnection& w = impl_->writer;
  {
    Use begin(w.begin);
    if (const int rc = begin->step(); rc != SQLITE_DONE) return begin->error(rc, "begin");
  }
  SqliteBatch batch(w);
  auto effects = run_batch(batch, operations, now_ms);
  if (effects.ok()) {
    Use commit(w.commit);
    const int rc = commit->step();
    if (rc == SQLITE_DONE) return effects;
    effects = Error{Code::unavailable, commit->error(rc, "commit").detail};
  }
  // Roll back whatever the batch wrote; after a failed COMMIT SQLite may have done so.
  if (!sqlite3_get_autocommit(w.db.get())) {
    Use rollback(w.rollback);
    (void)rollback->step();
  }
  return effects.error();
}

Result<core::Account> SqliteStore::account(std::string_view number) {
  Reader reader(*impl_);
  if (!reader.ok()) return reader.error();
  Use s((*reader).account);
  s->bind(1, number);
  const int rc = s->step();
  if (rc == SQLITE_ROW) return read_account(*s);
  if (rc == SQLITE_DONE) {
    return Error{Code::account_not_found, "account " + std::string(number) + " does not exist"};
  }
  return s->error(rc, "read account");
}

Result<core::Transaction> SqliteStore::transaction(std::string_view id) {
  Reader reader(*impl_);
  if (!reader.ok()) return reader.error();
  Use s((*reader).transaction);
  s->bind(1, id);
  const int rc = s->step();
  if (rc == SQLITE_ROW) return read_transaction(*s);
  if (rc == SQLITE_DONE) {
    return Error{Code::not_found, "transaction " + std::string(id) + " does not exist"};
  }
  return s->error(rc, "read transaction");
}

Result<HistoryPage> SqliteStore::history(std::string_view number,
                                         std::optional<int64_t> before_sequence, size_t limit) {
  assert(limit > 0 && limit <= history_limit_max);
  auto exists = account(number);
  if (!exists.ok()) return exists.error();
  Reader reader(*impl_);
  if (!reader.ok()) return reader.error();
  Use s((*reader).history);
  s->bind(1, number);
  s->bind(2, before_sequence.value_or(std::numeric_limits<int64_t>::max()));
  s->bind(3, static_cast<int64_t>(limit + 1));
  HistoryPage page;
  int rc = SQLITE_ROW;
  while ((rc = s->step()) == SQLITE_ROW) {
    if (page.transactions.size() == limit) {
      page.next_cursor = page.transactions.back().sequence;
      break;
    }
    page.transactions.push_back(read_transaction(*s));
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return s->error(rc, "read history");
  return page;
}

Status SqliteStore::ping() {
  Reader reader(*impl_);
  if (!reader.ok()) return Status(reader.error());
  auto version = schema_version((*reader).db);
  if (!version.ok()) return version.status();
  if (version.value() != sqlite_schema_version()) {
    return Status(Code::unavailable, "schema version " + std::to_string(version.value()) +
                                         " is not " + std::to_string(sqlite_schema_version()));
  }
  return {};
}

Status SqliteStore::scan(ScanVisitor& visitor) {
  Reader reader(*impl_);
  if (!reader.ok()) return Status(reader.error());
  Connection& db = (*reader).db;
  // One read transaction, so that the three scans see one snapshot.
  if (auto s = db.exec("BEGIN"); !s.ok()) return s;
  auto scan_rows = [&](const std::string& sql, auto&& row) -> Status {
    Statement s;
    if (auto status = s.prepare(db, sql); !status.ok()) return status;
    int rc = SQLITE_ROW;
    while ((rc = s.step()) == SQLITE_ROW) row(s);
    if (rc != SQLITE_DONE) return Status(s.error(rc, "scan"));
    return {};
  };
  Status status = scan_rows(std::string("SELECT ") + kAccountColumns + " FROM accounts",
                            [&](const Statement& s) { visitor.account(read_account(s)); });
  if (status.ok()) {
    status = scan_rows(std::string("SELECT ") + kTransactionColumns +
                           " FROM transactions WHERE status = 'committed' ORDER BY sequence",
                       [&](const Statement& s) { visitor.transaction(read_transaction(s)); });
  }
  if (status.ok()) {
    status = scan_rows(
        "SELECT log_id, operation_type, operator, operation_time, detail, prev_hash, hash "
        "FROM audit_log ORDER BY log_id",
        [&](const Statement& s) {
          visitor.audit(core::AuditRecord{.log_id = s.int64(0),
                                          .operation_type = s.text(1),
                                          .operator_name = s.text(2),
                                          .operation_time_ms = s.int64(3),
                                          .detail = s.text(4),
                                          .prev_hash = s.blob(5),
                                          .hash = s.blob(6)});
        });
  }
  (void)db.exec("COMMIT");
  return status;
}

}  // namespace balanced::storage
