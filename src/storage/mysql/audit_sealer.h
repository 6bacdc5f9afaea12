// Seals the audit records batches wrote into the hash chain, on MySQL, where concurrent
// writers have no one total order (see mysql_store.h).
//
// Two transactions. The first takes the barrier row alone, in one round trip (so the
// lock never waits on this process), when the bound it learnt last is used up: every
// batch share-locks it before it writes audit records and holds it to its COMMIT, so once the sealer has it, every record id handed
// out so far belongs to a batch that committed or rolled back, and the largest committed
// id bounds what can be sealed in order. New batches wait for the barrier only while
// the batches already writing commit. The second transaction links the records between
// the watermark and that bound, in id order, appending rows to `audit_link`: no record
// is rewritten.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "storage/mysql/mysql_db.h"
#include "storage/mysql/mysql_store.h"

namespace balanced::storage::mysql {

class AuditSealer {
 public:
  // `rows_max`: link rows per INSERT, at most.
  explicit AuditSealer(size_t rows_max) : rows_max_(rows_max) {}

  // Seals up to `records_max` records on `c` (the sealer's own connection) under the
  // fencing token `fence` (Code::forbidden when the database has seen a newer one).
  Result<SealResult> seal(Connection& c, int64_t fence, size_t records_max);
  // Records written but not yet sealed. Cheap: only the records above the watermark.
  static Result<int64_t> unsealed(Connection& c);

 private:
  const size_t rows_max_;
  // The largest record id known final, and the watermark this process last stored.
  std::atomic<int64_t> final_log_id_{0};
  std::atomic<int64_t> linked_log_id_{0};
};

}  // namespace balanced::storage::mysql
