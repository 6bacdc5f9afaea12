// The embedded default store: one SQLite file in WAL mode.
//
// One writer connection (the committer's) applies each batch in one BEGIN IMMEDIATE
// transaction; with synchronous=FULL a COMMIT is on disk when apply() returns. Reads use
// a bounded pool of their own connections, so they never wait for a commit (WAL readers
// see the last committed state). A background thread checkpoints the WAL into the main
// file so that commits do not pay for it.
#pragma once

#include <memory>
#include <string>

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
  size_t read_connections_max = 8;
  int busy_timeout_ms = 5000;
  int64_t checkpoint_interval_ms = 200;
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
  Result<core::BatchEffects> apply(std::span<const core::Operation> operations,
                                   int64_t now_ms) override;
  Result<core::Account> account(std::string_view number) override;
  Result<core::Transaction> transaction(std::string_view id) override;
  Result<HistoryPage> history(std::string_view number, std::optional<int64_t> before_sequence,
                              size_t limit) override;
  Status ping() override;
  Status scan(ScanVisitor& visitor) override;

  struct Impl;

 private:
  friend Result<std::unique_ptr<SqliteStore>> open_sqlite_store(const SqliteOptions&);
  explicit SqliteStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace balanced::storage
