// The embedded default store: SQLite, a ledger file and a commit log beside it.
//
// Why two: updating an account row and three indexes per transfer dirties four or five
// random pages, and at the small batches 64 connections produce, a commit rewrote about
// 20 KiB per transfer. So the durable commit writes only what cannot be recovered
// otherwise, and in key order:
//
//   PATH.commitlog  the commit log, a directory of append-only segment files
//                   (commit_log.h). apply() appends ONE record per batch (its effects,
//                   encoded) and fdatasyncs it: a batch is durable when apply() returns.
//                   One sequential write per batch, nothing else on the commit path.
//   PATH            the ledger tables of DESIGN.md §3 (accounts, transactions,
//                   audit_log). A background materializer applies committed batches to
//                   them in large chunks, so each random page is written once per chunk
//                   instead of once per batch. Its watermark (meta.applied_batch) is
//                   written in the same transaction, so recovery knows where to resume.
//                   Its writes are paced (paced_vfs.h), written back every 256 KiB and,
//                   near a commit-log fdatasync, waited for, so that a chunk never sits
//                   whole in the device's cache in front of a commit.
//
// Until a batch is materialized its accounts and transactions are held in memory (the
// pending overlay); every read and the committer consult the overlay first, then the
// ledger file, so no reader ever sees an older state than a committed one. The overlay
// is bounded (pending_transactions_max): when the materializer falls behind, apply()
// waits, the engine queue fills, and clients get 503 overloaded.
//
// At open, batches in the commit log past the watermark are materialized (recovery after
// kill -9 or power loss). Segments whose batches are all materialized are unlinked, by
// the materializer as it goes and at open and close.
#pragma once

#include <memory>
#include <string>

#include "storage/sqlite/commit_log.h"
#include "storage/store.h"

namespace balanced::storage {

struct SqliteOptions {
  std::string path;
  // FULL: every commit is fsynced (durable against power loss). NORMAL: durable against a
  // process crash, not a power cut. Never OFF.
  bool synchronous_full = true;
  // Run pending migrations at open. balanced does, so that `make run` on a fresh file
  // works; with false, open() fails on an older schema.
  bool migrate = true;
  // Open the ledger file for reading only: no lock, no recovery, no writes. For
  // `balancectl verify` while balanced runs; apply() fails.
  bool read_only = false;
  size_t read_connections_max = 8;
  int busy_timeout_ms = 5000;
  // Transactions committed but not yet materialized, at most.
  size_t pending_transactions_max = 200'000;
  // The materializer waits this long between chunks (unless the overlay is half full):
  // the longer the wait, the more transfers share each rewritten page.
  int64_t materialize_interval_ms = 1000;
  // The materializer thread's nice value (0: same as the rest; higher yields the CPU to
  // request handling when both want it).
  int materializer_nice = 10;
  // Transactions the materializer applies in one ledger transaction, at most.
  size_t materialize_chunk_transactions_max = 20'000;
  // Accounts the committer keeps in memory, at most (the oldest out first).
  size_t committer_accounts_max = 1'000'000;
  // How long apply() waits for the materializer before answering unavailable.
  int64_t backpressure_wait_ms_max = 5000;
};

// The schema version this build reads and writes.
int sqlite_schema_version();

class SqliteStore;
Result<std::unique_ptr<SqliteStore>> open_sqlite_store(const SqliteOptions& options);
// Applies pending migrations to the file; returns the version before and after.
Result<std::pair<int, int>> migrate_sqlite(const std::string& path);

class SqliteStore final : public Store {
 public:
  ~SqliteStore() override;
  using Store::apply;
  Result<core::BatchEffects> apply(std::span<const core::Operation> operations,
                                   int64_t now_ms, ApplyTimings& timings) override;
  Result<core::Account> account(std::string_view number) override;
  Result<core::Transaction> transaction(std::string_view id) override;
  Result<HistoryPage> history(std::string_view number, std::optional<int64_t> before_sequence,
                              size_t limit) override;
  Result<BalanceAt> balance_at(std::string_view number, int64_t at_ms) override;
  Result<HistoryPage> holds(std::string_view number, std::optional<int64_t> before_sequence,
                            size_t limit) override;
  Result<std::vector<std::string>> overdue_holds(int64_t now_ms, size_t limit) override;
  Result<HistoryPage> review_holds(std::string_view rule, std::optional<int64_t> before_sequence, size_t limit) override;
  Result<EventPage> events_after(int64_t after, size_t limit) override;
  Result<int64_t> prune_events(int64_t before_ms, size_t limit, int64_t through_max) override;
  Result<int64_t> relay_position(std::string_view relay) override;
  Result<core::Volumes> volumes(std::string_view currency, int64_t from_hour, int64_t to_hour) override;
  Result<std::map<core::TransactionType, core::DailyTotal>> flows(std::string_view number, int64_t from_day,
                                                                 int64_t to_day) override;
  Status confirm_relay(std::string_view relay, int64_t position) override;
  Status ping() override;
  Status scan(ScanVisitor& visitor) override;

  struct Impl;

 private:
  friend Result<std::unique_ptr<SqliteStore>> open_sqlite_store(const SqliteOptions&);
  explicit SqliteStore(std::unique_ptr<Impl> impl);
  Result<HistoryPage> read_page(std::string_view number, std::optional<int64_t> before_sequence, size_t limit,
                                bool holds_only);
  std::unique_ptr<Impl> impl_;
};

}  // namespace balanced::storage
