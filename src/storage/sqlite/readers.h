// The ledger file's readers: a bounded pool of read-only connections, each with its
// statements prepared once, lent out for one read at a time.
#pragma once

#include <condition_variable>
#include <memory>
#include <string>
#include <vector>

#include "core/codes.h"
#include "core/mutex.h"
#include "storage/sqlite/sqlite_db.h"

namespace balanced::storage::sqlite {

// A reader's connection and its statements.
struct ReadConnection {
  Connection db;
  Statement account, transaction, history;
  Statement events_after, oldest_event;  // the change feed (Store::events_after)
  Statement sequence_at, balance_at, postings_through;  // point in time (Store::balance_at)
  Statement holds, overdue_holds;
  Statement flows;  // reports (Store::flows): the applied batch, then the totals per type
  Statement volumes;  // reports (Store::volumes): the applied batch, then per hour and type
  Statement reference_owner;  // --unique-references
  // Risk velocity (BatchTransaction::load_velocity): the batch the file holds through,
  // and a source's committed debits, newest first.
  Statement applied_batch, recent_debits;
  Statement review_holds;  // Store::review_holds, by hold_keys (schema 13)
  // Prepared once: the committer opens and closes a read snapshot per batch, and
  // sqlite3_exec() would parse the text each time (~7,000 instructions a batch).
  Statement begin, commit;

  Status prepare();
};

class ReaderPool {
 public:
  // At most `connections_max` connections to `path`, opened when first needed.
  void configure(std::string path, ConnectionOptions options, size_t connections_max);

  // A new connection outside the pool (the committer's own).
  Result<std::unique_ptr<ReadConnection>> open();
  // A connection from the pool; waits while all `connections_max` are lent out.
  Result<std::unique_ptr<ReadConnection>> acquire();
  void release(std::unique_ptr<ReadConnection> reader);

 private:
  std::string path_;
  ConnectionOptions options_;
  size_t connections_max_ = 1;
  Mutex mutex_;
  std::condition_variable returned_;
  std::vector<std::unique_ptr<ReadConnection>> idle_ GUARDED_BY(mutex_);
  size_t open_ GUARDED_BY(mutex_) = 0;
};

// Borrows a connection from the pool for the scope of one read.
class Reader {
 public:
  explicit Reader(ReaderPool& pool) : pool_(pool), reader_(pool.acquire()) {}
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;
  ~Reader() {
    if (reader_.ok()) pool_.release(std::move(reader_.value()));
  }
  bool ok() const { return reader_.ok(); }
  const Error& error() const { return reader_.error(); }
  ReadConnection& operator*() { return *reader_.value(); }
  ReadConnection* operator->() { return reader_.value().get(); }

 private:
  ReaderPool& pool_;
  Result<std::unique_ptr<ReadConnection>> reader_;
};

}  // namespace balanced::storage::sqlite
