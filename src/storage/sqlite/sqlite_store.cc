#include "storage/sqlite/sqlite_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <limits>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <boost/unordered/unordered_flat_map.hpp>

#include "observe/log.h"
#include "core/mutex.h"
#include "storage/batch.h"
#include "storage/rows.h"
#include "storage/sqlite/checkpointer.h"
#include "storage/sqlite/commit_log.h"
#include "storage/sqlite/paced_vfs.h"
#include "storage/sqlite/journal_codec.h"
#include "storage/sqlite/sqlite_db.h"

namespace balanced::storage {

using sqlite::Connection;
using sqlite::ConnectionOptions;
using sqlite::Statement;
using sqlite::Use;

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
CREATE TABLE meta (
  name TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (name, value) VALUES ('applied_batch', 0);
)sql",
};

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

// A reader's connection and its statements.
struct ReadConnection {
  Connection db;
  Statement account, transaction, history;
  // Prepared once: the committer opens and closes a read snapshot per batch, and
  // sqlite3_exec() would parse the text each time (~7,000 instructions a batch).
  Statement begin, commit;

  Status prepare() {
    if (auto s = begin.prepare(db, "BEGIN"); !s.ok()) return s;
    if (auto s = commit.prepare(db, "COMMIT"); !s.ok()) return s;
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

// Applies committed batches to the ledger tables. Used by the materializer thread and by
// recovery at open; owns its own connection to the ledger file.
class LedgerWriter {
 public:
  Status open(const std::string& path, const ConnectionOptions& options) {
    if (auto s = db_.open(path, SQLITE_OPEN_READWRITE, options); !s.ok()) return s;
    const std::pair<Statement*, std::string> statements[] = {
        {&begin_, "BEGIN IMMEDIATE"},
        {&commit_, "COMMIT"},
        {&rollback_, "ROLLBACK"},
        {&read_applied_, "SELECT value FROM meta WHERE name = 'applied_batch'"},
        {&audit_head_, "SELECT hash FROM audit_log ORDER BY log_id DESC LIMIT 1"},
        {&write_applied_, "UPDATE meta SET value = ?1 WHERE name = 'applied_batch'"},
        {&insert_account_, std::string("INSERT INTO accounts (") + kAccountColumns +
                               ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"},
        {&update_account_,
         "UPDATE accounts SET balance = ?2, version = ?3, updated_at = ?4 "
         "WHERE account_number = ?1"},
        {&insert_transaction_, std::string("INSERT INTO transactions (") + kTransactionColumns +
                                   ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
                                   "?12, ?13, ?14)"},
        {&insert_audit_,
         "INSERT INTO audit_log (log_id, operation_type, operator, operation_time, detail, "
         "prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"},
    };
    for (const auto& [statement, sql] : statements) {
      if (auto s = statement->prepare(db_, sql); !s.ok()) return s;
    }
    return {};
  }

  Connection& connection() { return db_; }

  Result<int64_t> applied_batch() {
    Use s(read_applied_);
    const int rc = s->step();
    if (rc != SQLITE_ROW) return s->error(rc, "read applied batch");
    return s->int64(0);
  }

  // Applies, in one transaction, the batches above the watermark, and moves it.
  Status materialize(std::span<const std::pair<int64_t, const core::BatchEffects*>> batches) {
    {
      Use begin(begin_);
      if (const int rc = begin->step(); rc != SQLITE_DONE) return Status(begin->error(rc, "begin"));
    }
    Status status = write(batches);
    if (status.ok()) {
      Use commit(commit_);
      const int rc = commit->step();
      if (rc == SQLITE_DONE) return {};
      status = Status(commit->error(rc, "commit"));
    }
    if (!sqlite3_get_autocommit(db_.get())) {
      Use rollback(rollback_);
      (void)rollback->step();
    }
    return status;
  }

 private:
  Status write(std::span<const std::pair<int64_t, const core::BatchEffects*>> batches) {
    auto applied = applied_batch();
    if (!applied.ok()) return applied.status();
    int64_t last = applied.value();
    // Each account is written once per chunk, in its final state.
    std::unordered_map<std::string, std::pair<const core::Account*, bool>> accounts;
    for (const auto& [batch, effects] : batches) {
      if (batch <= last) continue;  // applied already (recovery racing the materializer)
      for (const auto& a : effects->created) accounts[a.number] = {&a, true};
      for (const auto& a : effects->updated) {
        auto& entry = accounts[a.number];
        entry = {&a, entry.first != nullptr && entry.second};
      }
    }
    for (const auto& [number, entry] : accounts) {
      const core::Account& a = *entry.first;
      Use s(entry.second ? insert_account_ : update_account_);
      s->bind(1, a.number);
      if (entry.second) {
        s->bind(2, a.currency);
        s->bind(3, a.balance);
        s->bind(4, a.overdraft_limit);
        s->bind(5, a.version);
        s->bind(6, a.created_at_ms);
        s->bind(7, a.updated_at_ms);
      } else {
        s->bind(2, a.balance);
        s->bind(3, a.version);
        s->bind(4, a.updated_at_ms);
      }
      if (const int rc = s->step(); rc != SQLITE_DONE) return Status(s->error(rc, "write account"));
    }
    std::string head;
    {
      Use s(audit_head_);
      const int rc = s->step();
      if (rc == SQLITE_ROW) {
        head = s->blob(0);
      } else if (rc != SQLITE_DONE) {
        return Status(s->error(rc, "read audit head"));
      }
    }
    std::vector<core::AuditRecord> audit;
    for (const auto& [batch, effects] : batches) {
      if (batch <= last) continue;
      for (const auto& t : effects->transactions) {
        if (auto s = insert_transaction(t); !s.ok()) return s;
      }
      audit = effects->audit;
      head = core::seal_audit(audit, effects->transactions, std::move(head));
      for (const auto& r : audit) {
        Use s(insert_audit_);
        s->bind(1, r.log_id);
        s->bind(2, r.operation_type);
        s->bind(3, r.operator_name);
        s->bind(4, r.operation_time_ms);
        s->bind(5, r.detail);
        s->bind_blob(6, r.prev_hash);
        s->bind_blob(7, r.hash);
        if (const int rc = s->step(); rc != SQLITE_DONE) return Status(s->error(rc, "insert audit"));
      }
      last = batch;
    }
    Use s(write_applied_);
    s->bind(1, last);
    if (const int rc = s->step(); rc != SQLITE_DONE) return Status(s->error(rc, "write watermark"));
    return {};
  }

  Status insert_transaction(const core::Transaction& t) {
    Use s(insert_transaction_);
    const std::string_view reject =
        t.status == core::TransactionStatus::rejected ? code_name(t.reject_code) : "";
    s->bind(1, t.sequence);
    s->bind(2, t.id);
    s->bind(3, core::type_name(t.type));
    s->bind(4, t.source);
    s->bind(5, t.destination);
    s->bind(6, t.amount);
    s->bind(7, t.currency);
    s->bind(8, core::status_name(t.status));
    if (reject.empty()) {
      s->bind_null(9);
    } else {
      s->bind(9, reject);
    }
    s->bind(10, t.source_balance_after);
    s->bind(11, t.destination_balance_after);
    s->bind(12, t.request_hash);
    s->bind(13, t.client_timestamp);
    s->bind(14, t.created_at_ms);
    if (const int rc = s->step(); rc != SQLITE_DONE) return Status(s->error(rc, "insert transaction"));
    return {};
  }

  Connection db_;
  Statement begin_, commit_, rollback_, read_applied_, write_applied_, audit_head_;
  Statement insert_account_, update_account_, insert_transaction_, insert_audit_;
};

// One committed, not yet materialized batch.
struct PendingBatch {
  int64_t batch = 0;
  core::BatchEffects effects;  // outcomes left empty
};

Status configure(Connection& connection, const SqliteOptions& options) {
  std::string pragmas = "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL;";
  pragmas += options.synchronous_full ? "PRAGMA synchronous = FULL;" : "PRAGMA synchronous = NORMAL;";
  pragmas += "PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;";
  return connection.exec(pragmas);
}

Result<int64_t> single_integer(Connection& db, const std::string& sql) {
  Statement s;
  if (auto status = s.prepare(db, sql); !status.ok()) return status.error();
  const int rc = s.step();
  if (rc != SQLITE_ROW) return s.error(rc, sql);
  return s.int64(0);
}

}  // namespace

int sqlite_schema_version() { return static_cast<int>(kMigrations.size()); }


// An exclusive flock(2) on PATH.lock, held for the life of the store.
struct FileLock {
  int fd = -1;
  FileLock() = default;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock() {
    if (fd >= 0) ::close(fd);
  }
};

struct SqliteStore::Impl {
  // First member, so it is released last, after every connection is closed.
  FileLock file_lock;
  SqliteOptions options;
  ConnectionOptions connection_options;

  // The committer's state. REQUIRES: touched only inside apply() (one caller at a time).
  CommitLog log;
  std::string record;  // the batch being committed, encoded by SqliteBatch::write()
  std::unique_ptr<ReadConnection> committer_reader;
  int64_t next_batch = 1;
  int64_t next_sequence = 1;
  int64_t next_log_id = 1;
  // The latest state of recently used accounts. This process is the only writer of the
  // files (see file_lock), so an entry here is always the newest; a miss falls back to the
  // overlay, then the ledger file. Bounded by committer_accounts_max.
  std::unordered_map<std::string, core::Account> committer_accounts;
  void remember(const core::Account& account) {
    auto it = committer_accounts.find(account.number);
    if (it != committer_accounts.end()) {
      it->second = account;
      return;
    }
    if (committer_accounts.size() >= options.committer_accounts_max) {
      committer_accounts.erase(committer_accounts.begin());
    }
    committer_accounts.emplace(account.number, account);
  }

  // The pending overlay, shared by the committer, the materializer and readers.
  // Overlay entries the materializer erases per hold of pending_mutex, at most.
  static constexpr size_t overlay_erase_slice_max = 256;
  Mutex pending_mutex;
  std::condition_variable pending_changed;
  std::unordered_map<std::string, core::Account> pending_accounts GUARDED_BY(pending_mutex);
  // Keys and values point into pending_batches, which outlive their entries here. Open
  // addressing, sized for the overlay's bound at open: the committer adds every transfer
  // and the materializer erases it, with no allocation and no rehash for either.
  boost::unordered_flat_map<std::string_view, const core::Transaction*> pending_transactions
      GUARDED_BY(pending_mutex);
  std::deque<std::shared_ptr<const PendingBatch>> pending_batches GUARDED_BY(pending_mutex);
  size_t pending_transaction_count GUARDED_BY(pending_mutex) = 0;
  int64_t materialized_batch GUARDED_BY(pending_mutex) = 0;
  std::string materializer_error GUARDED_BY(pending_mutex);
  bool stopping GUARDED_BY(pending_mutex) = false;

  LedgerWriter ledger;
  std::thread materializer;
  // After `ledger`, so stopped before the writer connection it watches is closed.
  sqlite::Checkpointer checkpointer;

  Mutex readers_mutex;
  std::condition_variable reader_returned;
  std::vector<std::unique_ptr<ReadConnection>> idle_readers GUARDED_BY(readers_mutex);
  size_t readers_open GUARDED_BY(readers_mutex) = 0;

  Result<std::unique_ptr<ReadConnection>> open_reader() {
    auto reader = std::make_unique<ReadConnection>();
    Status status = reader->db.open(options.path, SQLITE_OPEN_READONLY, connection_options);
    if (status.ok()) status = reader->prepare();
    if (!status.ok()) return status.error();
    return reader;
  }

  // A read connection from the pool; opens one while fewer than the maximum exist.
  Result<std::unique_ptr<ReadConnection>> acquire_reader() {
    {
      MutexLock lock(readers_mutex);
      lock.wait(reader_returned, [&]() REQUIRES(readers_mutex) {
        return !idle_readers.empty() || readers_open < options.read_connections_max;
      });
      if (!idle_readers.empty()) {
        auto reader = std::move(idle_readers.back());
        idle_readers.pop_back();
        return reader;
      }
      ++readers_open;
    }
    auto reader = open_reader();
    if (!reader.ok()) {
      MutexLock lock(readers_mutex);
      --readers_open;
      reader_returned.notify_one();
    }
    return reader;
  }

  void release_reader(std::unique_ptr<ReadConnection> reader) {
    MutexLock lock(readers_mutex);
    idle_readers.push_back(std::move(reader));
    reader_returned.notify_one();
  }

  // Materializes `chunk` into the ledger file and empties it.
  Status materialize_chunk(std::vector<std::pair<int64_t, core::BatchEffects>>& chunk) {
    std::vector<std::pair<int64_t, const core::BatchEffects*>> view;
    for (const auto& [batch, effects] : chunk) view.emplace_back(batch, &effects);
    if (auto s = ledger.materialize(view); !s.ok()) return s;
    chunk.clear();
    return {};
  }

  // A commit log of the first design (one SQLite file at the log's path): its batches
  // past the watermark are materialized, then the file goes, for the directory to take
  // its place.
  Status recover_sqlite_commit_log(int64_t applied, int64_t& last_logged) {
    const std::string path = commit_log_path(options.path);
    if (!std::filesystem::is_regular_file(path)) return {};
    {
      Connection old;
      if (auto s = old.open(path, SQLITE_OPEN_READWRITE, connection_options); !s.ok()) return s;
      Statement select;
      if (auto s = select.prepare(old, "SELECT batch, effects FROM commit_log WHERE batch > ?1 ORDER BY batch");
          !s.ok()) {
        return s;
      }
      select.bind(1, applied);
      std::vector<std::pair<int64_t, core::BatchEffects>> chunk;
      int rc = SQLITE_ROW;
      while ((rc = select.step()) == SQLITE_ROW) {
        auto effects = decode_journal_record(select.blob(1));
        if (!effects.ok()) return Status(Code::internal, path + ": " + effects.error().detail);
        last_logged = select.int64(0);
        chunk.emplace_back(last_logged, std::move(effects.value()));
        if (chunk.size() >= recovery_chunk_batches_max) {
          if (auto s = materialize_chunk(chunk); !s.ok()) return s;
        }
      }
      if (rc != SQLITE_DONE) return Status(select.error(rc, "read " + path));
      if (auto s = materialize_chunk(chunk); !s.ok()) return s;
    }
    std::error_code ignored;
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) std::filesystem::remove(path + suffix, ignored);
    observe::log(observe::LogLevel::info, "converted the commit log to segment files",
                 {{"path", path}});
    return {};
  }

  // Materializes every logged batch past the watermark; opens the log for appends.
  static constexpr size_t recovery_chunk_batches_max = 1000;
  Status recover() {
    auto applied = ledger.applied_batch();
    if (!applied.ok()) return applied.status();
    int64_t last_logged = 0;
    if (auto s = recover_sqlite_commit_log(applied.value(), last_logged); !s.ok()) return s;
    applied = ledger.applied_batch();
    if (!applied.ok()) return applied.status();
    std::vector<std::pair<int64_t, core::BatchEffects>> chunk;
    int64_t recovered = 0;
    auto visit = [&](int64_t batch, std::string_view payload) -> Status {
      auto effects = decode_journal_record(payload);
      if (!effects.ok()) {
        return Status(Code::internal, "commit log batch " + std::to_string(batch) + ": " + effects.error().detail);
      }
      chunk.emplace_back(batch, std::move(effects.value()));
      ++recovered;
      if (chunk.size() >= recovery_chunk_batches_max) return materialize_chunk(chunk);
      return {};
    };
    if (auto s = log.open(commit_log_path(options.path), options.synchronous_full, applied.value(), visit);
        !s.ok()) {
      return s;
    }
    if (auto s = materialize_chunk(chunk); !s.ok()) return s;
    if (recovered > 0) {
      observe::log(observe::LogLevel::info, "recovered batches from the commit log",
                   {{"batches", std::to_string(recovered)}});
    }
    applied = ledger.applied_batch();
    if (!applied.ok()) return applied.status();
    {
      MutexLock lock(pending_mutex);
      materialized_batch = applied.value();
    }
    next_batch = std::max({applied.value(), last_logged, log.last_batch()}) + 1;
    if (auto s = log.release_through(applied.value()); !s.ok()) return s;

    Connection& db = ledger.connection();
    auto sequence = single_integer(db, "SELECT coalesce(max(sequence), 0) FROM transactions");
    if (!sequence.ok()) return sequence.status();
    next_sequence = sequence.value() + 1;
    auto log_id = single_integer(db, "SELECT coalesce(max(log_id), 0) FROM audit_log");
    if (!log_id.ok()) return log_id.status();
    next_log_id = log_id.value() + 1;
    return {};
  }

  void run_materializer() {
    // Below the committer and the HTTP workers: its big chunks must not push requests'
    // latency up. It still gets its share; when it falls behind, backpressure bounds it.
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), options.materializer_nice);
    for (;;) {
      std::vector<std::shared_ptr<const PendingBatch>> chunk;
      {
        MutexLock lock(pending_mutex);
        lock.wait(pending_changed,
                  [&]() REQUIRES(pending_mutex) { return !pending_batches.empty() || stopping; });
        if (pending_batches.empty()) return;  // stopping, and everything is materialized
        // Let the chunk grow, unless stopping or the overlay is filling up.
        lock.wait_for(pending_changed, std::chrono::milliseconds(options.materialize_interval_ms),
                      [&]() REQUIRES(pending_mutex) {
                        return stopping || pending_transaction_count * 2 >=
                                               options.pending_transactions_max;
                      });
        size_t transactions = 0;
        for (const auto& batch : pending_batches) {
          if (!chunk.empty() && transactions + batch->effects.transactions.size() >
                                    options.materialize_chunk_transactions_max) {
            break;
          }
          transactions += batch->effects.transactions.size();
          chunk.push_back(batch);
        }
      }
      std::vector<std::pair<int64_t, const core::BatchEffects*>> view;
      for (const auto& batch : chunk) view.emplace_back(batch->batch, &batch->effects);
      Status status = ledger.materialize(view);
      if (!status.ok()) {
        {
          MutexLock lock(pending_mutex);
          materializer_error = status.detail();
        }
        observe::log(observe::LogLevel::error, "materializer failed, retrying",
                     {{"error.message", status.detail()}});
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        continue;
      }
      // The chunk is in the ledger file now, so its overlay entries may go at any pace.
      // They go a slice at a time, the lock released in between: this niced thread must
      // never hold pending_mutex, which the committer and every reader take, for the
      // milliseconds that erasing a 20,000-transaction chunk at once takes (a priority
      // inversion that made requests wait tens of milliseconds).
      for (const auto& batch : chunk) {
        const auto& transactions = batch->effects.transactions;
        for (size_t from = 0; from < transactions.size(); from += overlay_erase_slice_max) {
          const size_t to = std::min(transactions.size(), from + overlay_erase_slice_max);
          MutexLock slice(pending_mutex);
          for (size_t i = from; i < to; ++i) pending_transactions.erase(transactions[i].id);
          pending_transaction_count -= to - from;
        }
      }
      for (const auto& batch : chunk) {
        MutexLock lock(pending_mutex);  // one batch per hold, for the same reason
        materializer_error.clear();
        assert(pending_batches.front() == batch);
        auto forget = [&](const core::Account& a) REQUIRES(pending_mutex) {
          auto it = pending_accounts.find(a.number);
          if (it != pending_accounts.end() && it->second.version <= a.version) {
            pending_accounts.erase(it);
          }
        };
        for (const auto& a : batch->effects.created) forget(a);
        for (const auto& a : batch->effects.updated) forget(a);
        pending_batches.pop_front();
        materialized_batch = batch->batch;
      }
      pending_changed.notify_all();
      // The chunk's batches are in the ledger file (committed durably as the log's
      // records were): the log segments that hold only them can go.
      if (Status released = log.release_through(chunk.back()->batch); !released.ok()) {
        observe::log(observe::LogLevel::error, "cannot release commit log segments",
                     {{"error.message", released.detail()}});
      }
      chunk.clear();  // the batches' memory is freed here, outside the lock
    }
  }

  // Waits while the overlay is full. False after backpressure_wait_ms_max.
  bool wait_for_room() {
    MutexLock lock(pending_mutex);
    return lock.wait_for(pending_changed, std::chrono::milliseconds(options.backpressure_wait_ms_max),
                         [&]() REQUIRES(pending_mutex) {
                           return pending_transaction_count < options.pending_transactions_max;
                         });
  }
};

namespace {

// The committer's view inside one commit-log transaction: overlay first, then the
// ledger file.
class SqliteBatch final : public BatchTransaction {
 public:
  explicit SqliteBatch(SqliteStore::Impl& impl) : impl_(impl) {}

  Status load_accounts(std::span<const std::string> numbers, core::LedgerState& state) override {
    std::vector<const std::string*> uncached;
    for (const auto& number : numbers) {
      if (auto it = impl_.committer_accounts.find(number); it != impl_.committer_accounts.end()) {
        state.accounts.emplace(number, it->second);
      } else {
        uncached.push_back(&number);
      }
    }
    if (uncached.empty()) return {};
    std::vector<const std::string*> missing;
    {
      MutexLock lock(impl_.pending_mutex);
      for (const std::string* entry : uncached) {
        const std::string& number = *entry;
        if (auto it = impl_.pending_accounts.find(number); it != impl_.pending_accounts.end()) {
          state.accounts.emplace(number, it->second);
        } else {
          missing.push_back(&number);
        }
      }
    }
    for (const std::string* number : missing) {
      Use s(impl_.committer_reader->account);
      s->bind(1, *number);
      const int rc = s->step();
      if (rc == SQLITE_ROW) {
        impl_.remember(state.accounts.emplace(*number, read_account(*s)).first->second);
      } else if (rc != SQLITE_DONE) {
        return Status(s->error(rc, "load account"));
      }
    }
    return {};
  }

  Status load_transactions(std::span<const std::string> ids, core::LedgerState& state) override {
    std::vector<const std::string*> missing;
    {
      MutexLock lock(impl_.pending_mutex);
      for (const auto& id : ids) {
        if (auto it = impl_.pending_transactions.find(id); it != impl_.pending_transactions.end()) {
          state.existing.emplace(id, *it->second);
        } else {
          missing.push_back(&id);
        }
      }
    }
    for (const std::string* id : missing) {
      Use s(impl_.committer_reader->transaction);
      s->bind(1, *id);
      const int rc = s->step();
      if (rc == SQLITE_ROW) {
        state.existing.emplace(*id, read_transaction(*s));
      } else if (rc != SQLITE_DONE) {
        return Status(s->error(rc, "load transaction"));
      }
    }
    return {};
  }

  Status write(core::BatchEffects& effects) override {
    for (auto& t : effects.transactions) t.sequence = impl_.next_sequence++;
    for (auto& r : effects.audit) r.log_id = impl_.next_log_id++;
    // Appended, and made durable, by apply() once the whole batch is decided.
    impl_.record = encode_journal_record(effects);
    return {};
  }

 private:
  SqliteStore::Impl& impl_;
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
  if (options.read_only) {
    impl->connection_options.busy_timeout_ms = options.busy_timeout_ms;
    auto reader = impl->open_reader();
    if (!reader.ok()) return reader.error();
    impl->release_reader(std::move(reader.value()));
    return std::unique_ptr<SqliteStore>(new SqliteStore(std::move(impl)));
  }
  // One process owns a ledger: its committer trusts its own memory of the accounts.
  const std::string lock_path = options.path + ".lock";
  impl->file_lock.fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (impl->file_lock.fd < 0) return Error{Code::unavailable, "cannot open " + lock_path};
  if (::flock(impl->file_lock.fd, LOCK_EX | LOCK_NB) != 0) {
    return Error{Code::unavailable,
                 options.path + " is in use by another process (" + lock_path + " is locked)"};
  }
  impl->connection_options.busy_timeout_ms = options.busy_timeout_ms;
  {
    Connection db;
    if (auto s = db.open(options.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                         impl->connection_options);
        !s.ok()) {
      return s.error();
    }
    if (auto s = configure(db, options); !s.ok()) return s.error();
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
  }
  {
    MutexLock lock(impl->pending_mutex);
    impl->pending_transactions.reserve(options.pending_transactions_max);
  }
  // The materializer's writes are paced (paced_vfs.h): its bursts would otherwise sit in
  // the device's cache in front of the commit log's fdatasyncs.
  sqlite::ConnectionOptions writer_options = impl->connection_options;
  writer_options.vfs = sqlite::paced_vfs();
  if (auto s = impl->ledger.open(options.path, writer_options); !s.ok()) {
    return s.error();
  }
  if (auto s = configure(impl->ledger.connection(), options); !s.ok()) return s.error();
  if (auto s = impl->recover(); !s.ok()) return s.error();
  // From here on the log is checkpointed off the materializer's thread.
  if (auto s = impl->checkpointer.start(options.path, writer_options, options.materializer_nice);
      !s.ok()) {
    return s.error();
  }
  impl->checkpointer.watch(impl->ledger.connection().get());
  auto reader = impl->open_reader();
  if (!reader.ok()) return reader.error();
  impl->committer_reader = std::move(reader.value());
  impl->materializer = std::thread([raw = impl.get()] {
    observe::name_this_thread("materialize");
    raw->run_materializer();
  });
  return std::unique_ptr<SqliteStore>(new SqliteStore(std::move(impl)));
}

Result<std::pair<int, int>> migrate_sqlite(const std::string& path) {
  Connection db;
  if (auto s = db.open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, ConnectionOptions{});
      !s.ok()) {
    return s.error();
  }
  if (auto s = db.exec("PRAGMA journal_mode = WAL"); !s.ok()) return s.error();
  return run_migrations(db);
}

SqliteStore::SqliteStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SqliteStore::~SqliteStore() {
  {
    MutexLock lock(impl_->pending_mutex);
    impl_->stopping = true;
  }
  impl_->pending_changed.notify_all();
  if (impl_->materializer.joinable()) impl_->materializer.join();
  impl_->checkpointer.stop();
  if (!impl_->options.read_only) {
    int64_t materialized = 0;
    {
      MutexLock lock(impl_->pending_mutex);
      materialized = impl_->materialized_batch;
    }
    (void)impl_->log.release_through(materialized);
  }
}

Result<core::BatchEffects> SqliteStore::apply(std::span<const core::Operation> operations,
                                              int64_t now_ms, ApplyTimings& timings) {
  Impl& impl = *impl_;
  if (impl.options.read_only) return Error{Code::internal, "the store is open read-only"};
  const auto waited_from = std::chrono::steady_clock::now();
  const bool room = impl.wait_for_room();
  timings.backpressure_seconds = seconds_since(waited_from);
  if (!room) return Error{Code::unavailable, "the ledger materializer is behind"};
  const int64_t sequence_before = impl.next_sequence;
  const int64_t log_id_before = impl.next_log_id;
  SqliteBatch batch(impl);
  // One read snapshot for all of the batch's lookups instead of one per statement.
  ReadConnection& reader = *impl.committer_reader;
  {
    Use begin(reader.begin);
    (void)begin->step();
  }
  auto effects = run_batch(batch, operations, now_ms);
  {
    Use commit(reader.commit);
    (void)commit->step();
  }
  if (effects.ok()) {
    const auto durable_from = std::chrono::steady_clock::now();
    Status appended = impl.log.append(impl.next_batch, impl.record);
    timings.durable_seconds = seconds_since(durable_from);
    if (!appended.ok()) effects = appended.error();
  }
  if (!effects.ok()) {
    impl.next_sequence = sequence_before;
    impl.next_log_id = log_id_before;
    return effects.error();
  }
  // Durable. Publish to the overlay, then hand the batch to the materializer.
  auto pending = std::make_shared<PendingBatch>();
  pending->batch = impl.next_batch++;
  pending->effects.created = effects.value().created;
  pending->effects.updated = effects.value().updated;
  // The engine needs the outcomes and the accounts; the rows go to the materializer.
  pending->effects.transactions = std::move(effects.value().transactions);
  pending->effects.audit = std::move(effects.value().audit);
  effects.value().transactions.clear();
  effects.value().audit.clear();
  for (const auto& a : pending->effects.created) impl.remember(a);
  for (const auto& a : pending->effects.updated) impl.remember(a);
  {
    MutexLock lock(impl.pending_mutex);
    for (const auto& a : pending->effects.created) impl.pending_accounts[a.number] = a;
    for (const auto& a : pending->effects.updated) impl.pending_accounts[a.number] = a;
    for (const auto& t : pending->effects.transactions) impl.pending_transactions[t.id] = &t;
    impl.pending_transaction_count += pending->effects.transactions.size();
    impl.pending_batches.push_back(std::move(pending));
  }
  impl.pending_changed.notify_all();
  return effects;
}

Result<core::Account> SqliteStore::account(std::string_view number) {
  {
    MutexLock lock(impl_->pending_mutex);
    if (auto it = impl_->pending_accounts.find(std::string(number));
        it != impl_->pending_accounts.end()) {
      return it->second;
    }
  }
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
  {
    MutexLock lock(impl_->pending_mutex);
    if (auto it = impl_->pending_transactions.find(id); it != impl_->pending_transactions.end()) {
      return *it->second;
    }
  }
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
  const int64_t before = before_sequence.value_or(std::numeric_limits<int64_t>::max());
  // The overlay first, then the file: a batch materialized in between is in the file.
  std::vector<core::Transaction> rows;
  {
    MutexLock lock(impl_->pending_mutex);
    for (const auto& batch : impl_->pending_batches) {
      for (const auto& t : batch->effects.transactions) {
        if (t.sequence < before && t.status == core::TransactionStatus::committed &&
            (t.source == number || t.destination == number)) {
          rows.push_back(t);
        }
      }
    }
  }
  Reader reader(*impl_);
  if (!reader.ok()) return reader.error();
  Use s((*reader).history);
  s->bind(1, number);
  s->bind(2, before);
  s->bind(3, static_cast<int64_t>(limit + 1));
  int rc = SQLITE_ROW;
  while ((rc = s->step()) == SQLITE_ROW) rows.push_back(read_transaction(*s));
  if (rc != SQLITE_DONE) return s->error(rc, "read history");
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.sequence > b.sequence; });
  rows.erase(std::unique(rows.begin(), rows.end(),
                         [](const auto& a, const auto& b) { return a.sequence == b.sequence; }),
             rows.end());
  HistoryPage page;
  if (rows.size() > limit) {
    rows.resize(limit);
    page.next_cursor = rows.back().sequence;
  }
  page.transactions = std::move(rows);
  return page;
}

Status SqliteStore::ping() {
  // Not ready: nothing can commit until balanced is restarted.
  if (impl_->log.broken()) return Status(Code::unavailable, "the commit log failed; restart balanced");
  {
    MutexLock lock(impl_->pending_mutex);
    if (!impl_->materializer_error.empty()) {
      return Status(Code::unavailable, "materializer: " + impl_->materializer_error);
    }
  }
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
  // One read transaction, so that the three scans see one snapshot of the ledger file.
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
