#include "storage/sqlite/sqlite_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <deque>
#include <limits>
#include <unordered_map>

#include "core/json_codec.h"
#include "storage/batch.h"
#include "storage/rows.h"
#include "storage/sqlite/checkpointer.h"
#include "storage/sqlite/event_rows.h"
#include "storage/sqlite/journal_codec.h"
#include "storage/sqlite/ledger_writer.h"
#include "storage/sqlite/materializer.h"
#include "storage/sqlite/overlay.h"
#include "storage/sqlite/paced_vfs.h"
#include "storage/sqlite/readers.h"
#include "storage/sqlite/recovery.h"
#include "storage/sqlite/schema.h"
#include "storage/sqlite/sqlite_db.h"

namespace balanced::storage {

using sqlite::Connection;
using sqlite::ConnectionOptions;
using sqlite::Statement;
using sqlite::Use;

int sqlite_schema_version() { return sqlite::schema_version_of_build(); }

namespace {

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

}  // namespace

struct SqliteStore::Impl {
  explicit Impl(const SqliteOptions& o) : options(o), overlay(o.pending_transactions_max) {}

  // First member, so it is released last, after every connection is closed.
  FileLock file_lock;
  SqliteOptions options;
  ConnectionOptions connection_options;

  // The committer's state. REQUIRES: touched only inside apply() (one caller at a time).
  CommitLog log;
  std::string record;  // the batch being committed, encoded by SqliteBatch::write()
  std::unique_ptr<sqlite::ReadConnection> committer_reader;
  // The committer's own for the risk velocity reads (load_velocity), outside its batch's
  // snapshot; opened at the first. Its own: a pool's may all be lent out.
  std::unique_ptr<sqlite::ReadConnection> velocity_reader;
  // Risk velocity: each source's debits of the last day, read once at its first use and
  // then kept by this committer as it commits (it sees every commit), so a batch costs
  // the debits that came and went, not a read of the day's. At most
  // velocity_accounts_max accounts: beyond, all are dropped and read again when used.
  static constexpr size_t velocity_accounts_max = 65'536;
  std::unordered_map<std::string, core::DebitWindow> velocity_windows;
  int64_t next_batch = 1;
  int64_t next_sequence = 1;
  int64_t next_log_id = 1;
  int64_t next_event_id = 1;
  int64_t last_created_at_ms = 0;  // the latest commit time stamped
  // The latest state of recently used accounts. This process is the only writer of the
  // files (see file_lock), so an entry here is always the newest; a miss falls back to the
  // overlay, then the ledger file. Open addressing (every party of every batch is looked
  // up here twice); bounded by committer_accounts_max, the oldest entry out first
  // (committer_order: the numbers in the order they came in).
  core::FlatStringMap<core::Account> committer_accounts;
  std::deque<std::string> committer_order;
  void remember(const core::Account& account) {
    auto it = committer_accounts.find(account.number);
    if (it != committer_accounts.end()) {
      it->second = account;
      return;
    }
    while (committer_accounts.size() >= options.committer_accounts_max && !committer_order.empty()) {
      committer_accounts.erase(committer_order.front());
      committer_order.pop_front();
    }
    committer_accounts.emplace(account.number, account);
    committer_order.push_back(account.number);
  }

  sqlite::Overlay overlay;
  sqlite::LedgerWriter ledger;
  sqlite::Materializer materializer;
  // After `ledger`, so stopped before the writer connection it watches is closed.
  sqlite::Checkpointer checkpointer;
  sqlite::ReaderPool readers;
  // Deletes old events (prune_events), opened at the first call.
  Mutex pruner_mutex;
  std::unique_ptr<Connection> pruner GUARDED_BY(pruner_mutex);
};

namespace {

// The committer's view inside one commit-log transaction: its own memory, then the
// overlay, then the ledger file.
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
    impl_.overlay.load_accounts(uncached, state, missing);
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
    impl_.overlay.load_transactions(ids, state, missing);
    for (const std::string* id : missing) {
      Use s(impl_.committer_reader->transaction);
      s->bind(1, *id);
      const int rc = s->step();
      if (rc == SQLITE_ROW) {
        state.existing.insert_or_assign(*id, read_transaction(*s));
      } else if (rc != SQLITE_DONE) {
        return Status(s->error(rc, "load transaction"));
      }
    }
    return {};
  }

  Status load_reference_owners(std::span<const std::string> keys, core::LedgerState& state) override {
    std::vector<const std::string*> missing;
    impl_.overlay.load_reference_owners(keys, state, missing);
    for (const std::string* key : missing) {
      Use s(impl_.committer_reader->reference_owner);
      s->bind(1, *key);
      const int rc = s->step();
      if (rc == SQLITE_ROW) {
        state.reference_owners.emplace(*key, s->text(0));
      } else if (rc != SQLITE_DONE) {
        return Status(s->error(rc, "load reference"));
      }
    }
    return {};
  }

  // A source's window kept by this committer answers at once (Impl::velocity_windows); a
  // source seen for the first time, or asked about before an instant already asked for
  // (the clock went back), is read (read_debits), then kept.
  Status load_velocity(std::span<const std::string> sources, int64_t now_ms, core::LedgerState& state) override {
    std::vector<std::string> unknown;
    for (const auto& source : sources) {
      if (auto known = impl_.velocity_windows.find(source);
          known != impl_.velocity_windows.end() && known->second.answers(now_ms)) {
        state.velocity[source] = known->second.velocity(now_ms);
      } else {
        unknown.push_back(source);
      }
    }
    if (unknown.empty()) return {};
    if (impl_.velocity_windows.size() + unknown.size() > SqliteStore::Impl::velocity_accounts_max) {
      impl_.velocity_windows.clear();
    }
    std::unordered_map<std::string, std::vector<core::DebitWindow::Debit>> debits;
    if (auto read = read_debits(unknown, now_ms, debits); !read.ok()) return read;
    for (const auto& source : unknown) {
      core::DebitWindow window(std::move(debits[source]), now_ms);
      state.velocity[source] = window.velocity(now_ms);
      impl_.velocity_windows.insert_or_assign(source, std::move(window));
    }
    return {};
  }

  // Each of `sources`' committed debits of the day before now_ms, into `out`: the overlay
  // first, then the file in one snapshot of its own with the batch it holds through (as
  // SqliteStore::flows), so every committed batch counts once. Commit times grow with the
  // sequence: each source's read stops at its first row older than a day.
  Status read_debits(std::span<const std::string> sources, int64_t now_ms,
                     std::unordered_map<std::string, std::vector<core::DebitWindow::Debit>>& out) {
    const auto pending = impl_.overlay.pending();
    int64_t applied = 0;
    if (!impl_.velocity_reader) {
      auto opened = impl_.readers.open();
      if (!opened.ok()) return Status(opened.error());
      impl_.velocity_reader = std::move(opened.value());
    }
    {
      sqlite::ReadConnection* reader = impl_.velocity_reader.get();
      {
        Use begin(reader->begin);
        (void)begin->step();
      }
      Status read = [&]() -> Status {
        Use batch(reader->applied_batch);
        if (const int rc = batch->step(); rc == SQLITE_ROW) {
          applied = batch->int64(0);
        } else if (rc != SQLITE_DONE) {
          return Status(batch->error(rc, "read applied batch"));
        }
        for (const auto& source : sources) {
          auto& debits = out[source];
          Use s(reader->recent_debits);
          s->bind(1, source);
          int rc = 0;
          while ((rc = s->step()) == SQLITE_ROW) {
            if (s->int64(0) <= now_ms - core::DebitWindow::kept_ms) break;
            const auto type = core::type_from_name(s->text(2));
            if (!type || !core::counts_as_debit(*type)) continue;
            debits.push_back(core::DebitWindow::Debit{.created_at_ms = s->int64(0), .amount = s->int64(1)});
          }
          if (rc != SQLITE_ROW && rc != SQLITE_DONE) return Status(s->error(rc, "read recent debits"));
        }
        return {};
      }();
      Use commit(reader->commit);
      (void)commit->step();
      if (!read.ok()) return read;
    }
    for (const auto& batch : pending) {
      if (batch->batch <= applied) continue;
      for (const auto& t : batch->effects.transactions) {
        if (t.status != core::TransactionStatus::committed || !core::counts_as_debit(t.type)) continue;
        if (auto debits = out.find(t.source);
            debits != out.end() && t.created_at_ms > now_ms - core::DebitWindow::kept_ms) {
          debits->second.push_back(core::DebitWindow::Debit{.created_at_ms = t.created_at_ms, .amount = t.amount});
        }
      }
    }
    return {};
  }

  Status write(core::BatchEffects& effects) override {
    for (auto& t : effects.transactions) t.sequence = impl_.next_sequence++;
    for (auto& r : effects.audit) r.log_id = impl_.next_log_id++;
    for (auto& e : effects.events) e.id = impl_.next_event_id++;
    if (!effects.events.empty()) effects.last_event_id = effects.events.back().id;
    // Rendered by the materializer (LedgerWriter), with the audit details: the commit log
    // carries the events as they are.
    // Appended, and made durable, by apply() once the whole batch is decided.
    impl_.record = encode_journal_record(effects);
    return {};
  }

 private:
  SqliteStore::Impl& impl_;
};

// Creates or migrates the ledger file's schema, and checks that it is this build's.
Status prepare_schema(const SqliteOptions& options, const ConnectionOptions& connection_options) {
  Connection db;
  if (auto s = db.open(options.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, connection_options);
      !s.ok()) {
    return s;
  }
  if (auto s = sqlite::configure(db, options.synchronous_full); !s.ok()) return s;
  if (options.migrate) {
    auto migrated = sqlite::run_migrations(db);
    if (!migrated.ok()) return migrated.status();
  }
  auto version = sqlite::schema_version(db);
  if (!version.ok()) return version.status();
  if (version.value() != sqlite_schema_version()) {
    return Status(Code::unavailable, "schema version " + std::to_string(version.value()) +
                                         ", this build needs " +
                                         std::to_string(sqlite_schema_version()) +
                                         ": run `balancectl migrate`");
  }
  return {};
}

}  // namespace

Result<std::unique_ptr<SqliteStore>> open_sqlite_store(const SqliteOptions& options) {
  auto impl = std::make_unique<SqliteStore::Impl>(options);
  impl->connection_options.busy_timeout_ms = options.busy_timeout_ms;
  impl->readers.configure(options.path, impl->connection_options, options.read_connections_max);
  if (options.read_only) {
    auto reader = impl->readers.acquire();
    if (!reader.ok()) return reader.error();
    impl->readers.release(std::move(reader.value()));
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
  if (auto s = prepare_schema(options, impl->connection_options); !s.ok()) return s.error();
  // The materializer's writes are paced (paced_vfs.h): its bursts would otherwise sit in
  // the device's cache in front of the commit log's fdatasyncs.
  ConnectionOptions writer_options = impl->connection_options;
  writer_options.vfs = sqlite::paced_vfs();
  if (auto s = impl->ledger.open(options.path, writer_options); !s.ok()) return s.error();
  if (auto s = sqlite::configure(impl->ledger.connection(), options.synchronous_full); !s.ok()) {
    return s.error();
  }
  auto recovered = sqlite::recover(options.path, impl->connection_options, options.synchronous_full,
                                   impl->ledger, impl->log);
  if (!recovered.ok()) return recovered.error();
  impl->overlay.set_materialized_batch(recovered.value().applied_batch);
  impl->next_batch = recovered.value().next_batch;
  impl->next_sequence = recovered.value().next_sequence;
  impl->next_log_id = recovered.value().next_log_id;
  impl->next_event_id = recovered.value().next_event_id;
  impl->last_created_at_ms = recovered.value().last_created_at_ms;
  // From here on the log is checkpointed off the materializer's thread.
  if (auto s = impl->checkpointer.start(options.path, writer_options, options.materializer_nice);
      !s.ok()) {
    return s.error();
  }
  impl->checkpointer.watch(impl->ledger.connection().get());
  auto reader = impl->readers.open();
  if (!reader.ok()) return reader.error();
  impl->committer_reader = std::move(reader.value());
  impl->materializer.start(impl->overlay, impl->ledger, impl->log,
                           {.interval = std::chrono::milliseconds(options.materialize_interval_ms),
                            .chunk_transactions_max = options.materialize_chunk_transactions_max,
                            .nice = options.materializer_nice});
  return std::unique_ptr<SqliteStore>(new SqliteStore(std::move(impl)));
}

Result<std::pair<int, int>> migrate_sqlite(const std::string& path) {
  Connection db;
  if (auto s = db.open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, ConnectionOptions{});
      !s.ok()) {
    return s.error();
  }
  if (auto s = db.exec("PRAGMA journal_mode = WAL"); !s.ok()) return s.error();
  return sqlite::run_migrations(db);
}

SqliteStore::SqliteStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SqliteStore::~SqliteStore() {
  impl_->overlay.stop();
  impl_->materializer.join();
  impl_->checkpointer.stop();
  if (!impl_->options.read_only) (void)impl_->log.release_through(impl_->overlay.materialized_batch());
}

Result<core::BatchEffects> SqliteStore::apply(std::span<const core::Operation> operations,
                                              int64_t now_ms, ApplyTimings& timings) {
  Impl& impl = *impl_;
  if (impl.options.read_only) return Error{Code::internal, "the store is open read-only"};
  const auto waited_from = std::chrono::steady_clock::now();
  const bool room = impl.overlay.wait_for_room(std::chrono::milliseconds(impl.options.backpressure_wait_ms_max));
  timings.backpressure_seconds = seconds_since(waited_from);
  if (!room) return Error{Code::unavailable, "the ledger materializer is behind"};
  // Commit times never go back, whatever the wall clock does: a balance at an instant
  // finds its sequence by them (balance_at).
  now_ms = std::max(now_ms, impl.last_created_at_ms);
  impl.last_created_at_ms = now_ms;
  const int64_t sequence_before = impl.next_sequence;
  const int64_t log_id_before = impl.next_log_id;
  const int64_t event_id_before = impl.next_event_id;
  SqliteBatch batch(impl);
  // One read snapshot for all of the batch's lookups instead of one per statement.
  sqlite::ReadConnection& reader = *impl.committer_reader;
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
    impl.next_event_id = event_id_before;
    return effects.error();
  }
  // Durable. Publish to the overlay, which hands the batch to the materializer.
  auto pending = std::make_shared<sqlite::PendingBatch>();
  pending->batch = impl.next_batch++;
  pending->effects.created = effects.value().created;
  pending->effects.updated = effects.value().updated;
  // The engine needs the outcomes and the accounts; the rows go to the materializer.
  pending->effects.transactions = std::move(effects.value().transactions);
  pending->effects.audit = std::move(effects.value().audit);
  pending->effects.transaction_updates = std::move(effects.value().transaction_updates);
  pending->effects.reference_claims = std::move(effects.value().reference_claims);
  pending->effects.events = std::move(effects.value().events);
  effects.value().transactions.clear();
  effects.value().audit.clear();
  effects.value().transaction_updates.clear();
  effects.value().events.clear();
  for (const auto& a : pending->effects.created) impl.remember(a);
  for (const auto& a : pending->effects.updated) impl.remember(a);
  if (!impl.velocity_windows.empty()) {
    for (const auto& t : pending->effects.transactions) {
      if (t.status != core::TransactionStatus::committed || !core::counts_as_debit(t.type)) continue;
      if (auto window = impl.velocity_windows.find(t.source); window != impl.velocity_windows.end()) {
        window->second.add(t.created_at_ms, t.amount);
      }
    }
  }
  impl.overlay.publish(std::move(pending));
  return effects;
}

Result<core::Account> SqliteStore::account(std::string_view number) {
  if (auto pending = impl_->overlay.account(number)) return *std::move(pending);
  sqlite::Reader reader(impl_->readers);
  if (!reader.ok()) return reader.error();
  Use s(reader->account);
  s->bind(1, number);
  const int rc = s->step();
  if (rc == SQLITE_ROW) return read_account(*s);
  if (rc == SQLITE_DONE) {
    return Error{Code::account_not_found, "account " + std::string(number) + " does not exist"};
  }
  return s->error(rc, "read account");
}

Result<core::Transaction> SqliteStore::transaction(std::string_view id) {
  if (auto pending = impl_->overlay.transaction(id)) return *std::move(pending);
  sqlite::Reader reader(impl_->readers);
  if (!reader.ok()) return reader.error();
  Use s(reader->transaction);
  s->bind(1, id);
  const int rc = s->step();
  if (rc == SQLITE_ROW) return read_transaction(*s);
  if (rc == SQLITE_DONE) {
    return Error{Code::not_found, "transaction " + std::string(id) + " does not exist"};
  }
  return s->error(rc, "read transaction");
}

// A page of `number`'s committed rows (holds only, or all) from the overlay, then the
// file: a batch materialized in between is in the file. Each row in its newest state.
Result<HistoryPage> SqliteStore::read_page(std::string_view number, std::optional<int64_t> before_sequence,
                                           size_t limit, bool holds_only) {
  assert(limit > 0 && limit <= history_limit_max);
  const int64_t before = before_sequence.value_or(std::numeric_limits<int64_t>::max());
  std::vector<core::Transaction> rows;
  impl_->overlay.history(number, before, rows);
  if (holds_only) {
    std::erase_if(rows, [](const core::Transaction& t) { return t.type != core::TransactionType::hold; });
  }
  sqlite::Reader reader(impl_->readers);
  if (!reader.ok()) return reader.error();
  Use s(holds_only ? reader->holds : reader->history);
  s->bind(1, number);
  s->bind(2, before);
  s->bind(3, static_cast<int64_t>(limit + 1));
  int rc = SQLITE_ROW;
  while ((rc = s->step()) == SQLITE_ROW) {
    rows.push_back(read_transaction(*s));
    // Ended since it was materialized? (Only a hold's state is shown in a page.)
    if (holds_only) impl_->overlay.patch(rows.back());
  }
  if (rc != SQLITE_DONE) return s->error(rc, holds_only ? "read holds" : "read history");
  return page_of(std::move(rows), limit);
}

Result<HistoryPage> SqliteStore::history(std::string_view number,
                                         std::optional<int64_t> before_sequence, size_t limit) {
  auto exists = account(number);
  if (!exists.ok()) return exists.error();
  return read_page(number, before_sequence, limit, false);
}

Result<HistoryPage> SqliteStore::holds(std::string_view number, std::optional<int64_t> before_sequence,
                                       size_t limit) {
  return read_page(number, before_sequence, limit, true);
}

// The overlay's review holds, then the file's (as read_page), each in its newest state:
// one ended in the overlay is left out after the read, so the file is read with room for
// as many as the overlay updated.
Result<HistoryPage> SqliteStore::review_holds(std::string_view rule, std::optional<int64_t> before_sequence,
                                              size_t limit) {
  assert(limit > 0 && limit <= history_limit_max);
  const int64_t before = before_sequence.value_or(std::numeric_limits<int64_t>::max());
  std::vector<core::Transaction> rows;
  size_t updates = 0;
  for (const auto& batch : impl_->overlay.pending()) {
    updates += batch->effects.transaction_updates.size();
    for (const auto& t : batch->effects.transactions) {
      if (t.risk_decision == "review" && t.type == core::TransactionType::hold &&
          t.status == core::TransactionStatus::committed && t.sequence < before && (rule.empty() || t.risk_rule == rule)) {
        rows.push_back(t);
      }
    }
  }
  sqlite::Reader reader(impl_->readers);
  if (!reader.ok()) return reader.error();
  Use s(reader->review_holds);
  s->bind(1, rule);
  s->bind(2, before);
  s->bind(3, static_cast<int64_t>(limit + 1 + updates));
  int rc = SQLITE_ROW;
  while ((rc = s->step()) == SQLITE_ROW) rows.push_back(read_transaction(*s));
  if (rc != SQLITE_DONE) return s->error(rc, "read review holds");
  for (auto& row : rows) impl_->overlay.patch(row);
  std::erase_if(rows, [](const core::Transaction& t) { return t.hold_status != core::HoldStatus::pending; });
  return page_of(std::move(rows), limit);
}

// From the ledger file only: a hold still in the overlay was placed moments ago, far
// from its expiry (a second at least), and is found by the next run.
Result<std::vector<std::string>> SqliteStore::overdue_holds(int64_t now_ms, size_t limit) {
  sqlite::Reader reader(impl_->readers);
  if (!reader.ok()) return reader.error();
  Use s(reader->overdue_holds);
  s->bind(1, now_ms);
  s->bind(2, static_cast<int64_t>(limit));
  std::vector<std::string> ids;
  int rc = SQLITE_ROW;
  while ((rc = s->step()) == SQLITE_ROW) ids.push_back(s->text(0));
  if (rc != SQLITE_DONE) return s->error(rc, "read overdue holds");
  return ids;
}

Result<BalanceAt> SqliteStore::balance_at(std::string_view number, int64_t at_ms) {
  // Pending rows are newer than any in the file, and carry their versions.
  if (auto pending = impl_->overlay.latest_at(number, at_ms)) {
    const bool source = pending->source == number;
    return BalanceAt{.balance = source ? pending->source_balance_after : pending->destination_balance_after,
                     .version = source ? pending->source_version_after : pending->destination_version_after};
  }
  sqlite::Reader reader(impl_->readers);
  if (!reader.ok()) return reader.error();
  BalanceAt at;
  int64_t sequence = 0;
  {
    Use s(reader->sequence_at);
    s->bind(1, at_ms);
    const int rc = s->step();
    if (rc == SQLITE_DONE) return at;  // nothing committed by then
    if (rc != SQLITE_ROW) return s->error(rc, "read sequence at");
    sequence = s->int64(0);
  }
  {
    Use s(reader->balance_at);
    s->bind(1, number);
    s->bind(3, sequence);
    const int rc = s->step();
    if (rc == SQLITE_DONE) return at;
    if (rc != SQLITE_ROW) return s->error(rc, "read balance at");
    at = BalanceAt{.balance = s->int64(0), .version = s->int64(1)};
    sequence = s->int64(2);
  }
  if (at.version == 0) {  // a row from before versions were kept: count the postings
    Use s(reader->postings_through);
    s->bind(1, number);
    s->bind(2, sequence);
    const int rc = s->step();
    if (rc != SQLITE_ROW) return s->error(rc, "count postings");
    at.version = s->int64(0);
  }
  return at;
}

Result<EventPage> SqliteStore::events_after(int64_t after, size_t limit) {
  EventPage page;
  // The pending ones first: every event below the first pending is in the file by now.
  std::vector<core::StoredEvent> pending;
  const int64_t first_pending = impl_->overlay.events_after(after, limit, pending);
  sqlite::Reader reader(impl_->readers);
  if (!reader.ok()) return reader.error();
  {
    Use s(reader->oldest_event);
    const int rc = s->step();
    if (rc != SQLITE_ROW) return s->error(rc, "read oldest event");
    page.oldest = s->int64(0) != 0 ? s->int64(0) : first_pending;
  }
  if (first_pending == 0 || after + 1 < first_pending) {
    Use s(reader->events_after);
    s->bind(1, after);
    s->bind(2, first_pending == 0 ? std::numeric_limits<int64_t>::max() : first_pending);
    s->bind(3, static_cast<int64_t>(limit));
    int rc = 0;
    while ((rc = s->step()) == SQLITE_ROW) {
      // Schema 8: a transaction's row comes from its audit detail (NULL: the body is whole);
      // schema 14: its balances from the row, when it keeps the row's sequence.
      std::string body;
      if (!s->is_null(5)) {
        if (s->is_null(6)) return Error{Code::internal, "event " + std::to_string(s->int64(0)) + ": its row is gone"};
        auto whole = sqlite::expand_event_body(s->text_view(3), s->text_view(1), s->int64(2),
                                               sqlite::row_parties(*s, 6), s->text_view(4));
        if (!whole.ok()) return whole.error();
        body = std::move(whole).value();
      } else {
        body = s->is_null(4) ? s->text(3) : core::with_transaction(s->text_view(3), s->text_view(4));
      }
      page.events.push_back(core::StoredEvent{
          .id = s->int64(0), .type = s->text(1), .occurred_at_ms = s->int64(2), .body = std::move(body)});
    }
    if (rc != SQLITE_DONE) return s->error(rc, "read events");
  }
  for (auto& event : pending) {
    if (page.events.size() >= limit) break;
    page.events.push_back(std::move(event));
  }
  return page;
}

namespace {

// The pruner's connection (opened at its first use), which also keeps the relays'
// positions: a writer of its own, between the materializer's transactions (busy timeout).
Result<Connection*> pruner_connection(SqliteStore::Impl& impl) REQUIRES(impl.pruner_mutex) {
  if (impl.options.read_only) return Error{Code::internal, "the store is open read-only"};
  if (!impl.pruner) {
    auto pruner = std::make_unique<Connection>();
    if (auto s = pruner->open(impl.options.path, SQLITE_OPEN_READWRITE, impl.connection_options); !s.ok()) {
      return s.error();
    }
    impl.pruner = std::move(pruner);
  }
  return impl.pruner.get();
}

}  // namespace

Result<int64_t> SqliteStore::prune_events(int64_t before_ms, size_t limit, int64_t through_max) {
  // One short DELETE of at most `limit` rows, always a prefix of the ids: it stops at the
  // first of the oldest `limit` events that is not old enough, so a clock set back (a
  // later id with an earlier time) never leaves a hole a reader would skip unwarned. The
  // first event young enough is found by one table's min(), which SQLite reads along the
  // ids and stops at (a join with `window` read all `limit` of them, every run: ~7M
  // instructions a second with nothing to prune).
  MutexLock lock(impl_->pruner_mutex);
  auto connection = pruner_connection(*impl_);
  if (!connection.ok()) return connection.error();
  Statement s;
  if (auto status = s.prepare(*connection.value(),
                              "WITH window(end_id) AS (SELECT coalesce(min(id), 0) + ?2 FROM events) "
                              "DELETE FROM events WHERE id < coalesce((SELECT min(id) FROM events WHERE id < "
                              "(SELECT end_id FROM window) AND occurred_at >= ?1), (SELECT end_id FROM window)) AND "
                              "id < (SELECT max(id) FROM events) AND id <= ?3");
      !status.ok()) {
    return status.error();
  }
  s.bind(1, before_ms);
  s.bind(2, static_cast<int64_t>(limit));
  s.bind(3, through_max);
  const int rc = s.step();
  if (rc != SQLITE_DONE) return s.error(rc, "prune events");
  return static_cast<int64_t>(sqlite3_changes(connection.value()->get()));
}

Result<std::map<core::TransactionType, core::DailyTotal>> SqliteStore::flows(std::string_view number, int64_t from_day,
                                                                             int64_t to_day) {
  // The overlay first, then the file with the batch it holds through (one snapshot): a
  // pending batch counts only when the file does not hold it yet, so none counts twice;
  // one materialized in between is in the file.
  const auto pending = impl_->overlay.pending();
  std::map<core::TransactionType, core::DailyTotal> by_type;
  int64_t applied = 0;
  {
    sqlite::Reader reader(impl_->readers);
    if (!reader.ok()) return reader.error();
    Use s(reader->flows);
    s->bind(1, number);
    s->bind(2, from_day);
    s->bind(3, to_day);
    int rc = 0;
    while ((rc = s->step()) == SQLITE_ROW) {
      applied = s->int64(0);
      if (s->is_null(1)) continue;  // no totals in those days
      const auto type = core::type_from_name(s->text(1));
      if (!type) return Error{Code::internal, "daily_totals: unknown type " + s->text(1)};
      core::add_daily_total(by_type[*type],
                            core::DailyTotal{.credits = s->int64(2), .debits = s->int64(3), .count = s->int64(4)});
    }
    if (rc != SQLITE_DONE) return s->error(rc, "read daily totals");
  }
  core::DailyTotals recent;
  for (const auto& batch : pending) {
    if (batch->batch <= applied) continue;
    for (const auto& t : batch->effects.transactions) {
      if (t.source == number || t.destination == number) core::add_daily_totals(t, recent);
    }
  }
  for (const auto& [key, total] : recent) {
    if (key.account == number && key.day >= from_day && key.day <= to_day) core::add_daily_total(by_type[key.type], total);
  }
  return by_type;
}

Result<core::Volumes> SqliteStore::volumes(std::string_view currency, int64_t from_hour, int64_t to_hour) {
  // As flows(): the overlay first, then the file and the batch it holds through.
  const auto pending = impl_->overlay.pending();
  core::Volumes out;
  int64_t applied = 0;
  {
    sqlite::Reader reader(impl_->readers);
    if (!reader.ok()) return reader.error();
    Use s(reader->volumes);
    s->bind(1, currency);
    s->bind(2, from_hour);
    s->bind(3, to_hour);
    int rc = 0;
    while ((rc = s->step()) == SQLITE_ROW) {
      applied = s->int64(0);
      if (s->is_null(1)) continue;
      const auto type = core::type_from_name(s->text(2));
      if (!type) return Error{Code::internal, "volume_totals: unknown type " + s->text(2)};
      core::add_volume(out[core::VolumeKey{std::string(currency), s->int64(1), *type}],
                       core::Volume{.count = s->int64(3), .amount = s->int64(4)});
    }
    if (rc != SQLITE_DONE) return s->error(rc, "read volume totals");
  }
  core::Volumes recent;
  for (const auto& batch : pending) {
    if (batch->batch <= applied) continue;
    for (const auto& t : batch->effects.transactions) {
      if (t.currency == currency) core::add_volumes(t, recent);
    }
  }
  for (const auto& [key, volume] : recent) {
    if (key.hour >= from_hour && key.hour <= to_hour) core::add_volume(out[key], volume);
  }
  return out;
}

Result<int64_t> SqliteStore::relay_position(std::string_view relay) {
  MutexLock lock(impl_->pruner_mutex);
  auto connection = pruner_connection(*impl_);
  if (!connection.ok()) return connection.error();
  Statement s;
  if (auto status = s.prepare(*connection.value(), "SELECT position FROM relay_positions WHERE name = ?1");
      !status.ok()) {
    return status.error();
  }
  s.bind(1, relay);
  const int rc = s.step();
  if (rc == SQLITE_DONE) return int64_t{0};
  if (rc != SQLITE_ROW) return s.error(rc, "read relay position");
  return s.int64(0);
}

Status SqliteStore::confirm_relay(std::string_view relay, int64_t position) {
  MutexLock lock(impl_->pruner_mutex);
  auto connection = pruner_connection(*impl_);
  if (!connection.ok()) return connection.status();
  Statement s;
  if (auto status = s.prepare(*connection.value(),
                              "INSERT INTO relay_positions (name, position, updated_at) VALUES (?1, ?2, ?3) "
                              "ON CONFLICT (name) DO UPDATE SET position = max(position, excluded.position), "
                              "updated_at = excluded.updated_at");
      !status.ok()) {
    return status;
  }
  s.bind(1, relay);
  s.bind(2, position);
  s.bind(3, std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count());
  const int rc = s.step();
  if (rc != SQLITE_DONE) return Status(s.error(rc, "confirm relay position"));
  return {};
}

Status SqliteStore::ping() {
  // Not ready: nothing can commit until balanced is restarted.
  if (impl_->log.broken()) return Status(Code::unavailable, "the commit log failed; restart balanced");
  if (const std::string error = impl_->overlay.error(); !error.empty()) {
    return Status(Code::unavailable, "materializer: " + error);
  }
  sqlite::Reader reader(impl_->readers);
  if (!reader.ok()) return Status(reader.error());
  auto version = sqlite::schema_version(reader->db);
  if (!version.ok()) return version.status();
  if (version.value() != sqlite_schema_version()) {
    return Status(Code::unavailable, "schema version " + std::to_string(version.value()) +
                                         " is not " + std::to_string(sqlite_schema_version()));
  }
  return {};
}

Status SqliteStore::scan(ScanVisitor& visitor) {
  sqlite::Reader reader(impl_->readers);
  if (!reader.ok()) return Status(reader.error());
  Connection& db = reader->db;
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
  Status status = scan_rows("SELECT " + account_columns() + " FROM accounts",
                            [&](const Statement& s) { visitor.account(read_account(s)); });
  if (status.ok()) {
    status = scan_rows("SELECT reference_key, transaction_id FROM unique_references", [&](const Statement& s) {
      visitor.reference_claim(core::ReferenceClaim{.key = s.text(0), .transaction_id = s.text(1)});
    });
  }
  if (status.ok()) {
    status = scan_rows("SELECT " + transaction_columns() +
                           " FROM transactions WHERE status = 'committed' ORDER BY sequence",
                       [&](const Statement& s) { visitor.transaction(read_transaction(s)); });
  }
  if (status.ok()) {
    visitor.keeps_hold_keys();
    status = scan_rows("SELECT sequence, source_account, destination_account, expires_at, pending, review FROM hold_keys",
                       [&](const Statement& s) {
                         visitor.hold_key(core::HoldKey{.sequence = s.int64(0),
                                                        .source = s.text(1),
                                                        .destination = s.text(2),
                                                        .expires_at_ms = s.int64(3),
                                                        .pending = s.int64(4) != 0,
                                                        .review = s.int64(5) != 0});
                       });
  }
  if (status.ok()) {
    status = scan_stored_reports(visitor, [&](std::string_view sql, auto&& row) { return scan_rows(std::string(sql), row); });
  }
  if (status.ok()) {
    status = scan_rows("SELECT COALESCE(min(id), 0), COALESCE(max(id), 0), count(*) FROM events",
                       [&](const Statement& s) { visitor.event_span(s.int64(0), s.int64(1), s.int64(2), std::nullopt); });
  }
  if (status.ok()) {
    // Check 13: the events rendered from their rows (schema 14) can be.
    status = scan_rows(
        "SELECT e.id, e.type, e.occurred_at, e.body, e.sequence, t.status, " + std::string(sqlite::kRowPartiesColumns) +
            " FROM events e LEFT JOIN transactions t ON t.sequence = e.sequence WHERE e.sequence IS NOT NULL",
        [&](const Statement& s) {
          if (s.is_null(5) || s.text_view(5) != sql_text(core::TransactionStatus::committed)) {
            visitor.unreadable_event(s.int64(0), "its row " + std::to_string(s.int64(4)) + " is not a committed transaction");
            return;
          }
          auto whole = sqlite::expand_event_body(s.text_view(3), s.text_view(1), s.int64(2), sqlite::row_parties(s, 6));
          if (!whole.ok()) visitor.unreadable_event(s.int64(0), whole.error().detail);
        });
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
