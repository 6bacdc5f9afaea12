// Writes committed batches into the ledger tables (DESIGN.md §3) and moves the
// watermark (meta.applied_batch) in the same transaction. Used by the materializer
// thread and by recovery at open; owns its own connection to the ledger file.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>

#include "core/codes.h"
#include "core/ledger.h"
#include "storage/sqlite/sqlite_db.h"

namespace balanced::storage::sqlite {

// Committed batches by number, in order.
using BatchesView = std::span<const std::pair<int64_t, const core::BatchEffects*>>;

class LedgerWriter {
 public:
  Status open(const std::string& path, const ConnectionOptions& options);
  Connection& connection() { return db_; }

  // The last batch written to the tables.
  Result<int64_t> applied_batch();
  // Applies, in one transaction, the batches above the watermark, and moves it. Each
  // account is written once, in its final state; audit records are chained here.
  Status materialize(BatchesView batches);

 private:
  Status write(BatchesView batches);
  Status insert_transaction(const core::Transaction& t);
  // An earlier row's new state (rows.h: Column::state).
  Status update_transaction(const core::Transaction& t);
  // A committed hold's row in hold_keys (schema 13), and its pending flag after.
  Status insert_hold_key(const core::Transaction& t);
  Status update_hold_key(const core::Transaction& t);
  // The last sequence stamped at one commit time (table commit_times).
  struct CommitTime {
    int64_t created_at_ms = 0;
    int64_t last_sequence = 0;
  };
  Status write_commit_time(const CommitTime& time);

  Connection db_;
  Statement begin_, commit_, rollback_, read_applied_, write_applied_, audit_head_;
  Statement write_account_, insert_transaction_, insert_common_transaction_, update_transaction_, insert_reference_,
      write_commit_time_, insert_event_, insert_audit_, add_daily_total_, add_volume_, insert_hold_key_,
      update_hold_key_;
};

}  // namespace balanced::storage::sqlite
