// One batch inside one open database transaction: load what the batch names, apply
// the ledger rules, write the effects. The caller begins, commits or rolls back.
#pragma once

#include <span>

#include "core/codes.h"
#include "core/ledger.h"

namespace balanced::storage {

// The operations a backend offers inside its open database transaction.
class BatchTransaction {
 public:
  virtual ~BatchTransaction() = default;
  // Loads (and on a multi-writer database, locks, in the given sorted order) the
  // accounts that exist among `numbers`.
  virtual Status load_accounts(std::span<const std::string> numbers,
                               core::LedgerState& state) = 0;
  virtual Status load_transactions(std::span<const std::string> ids,
                                   core::LedgerState& state) = 0;
  // Loads the stored rows the batch refers to (core::referenced_transactions): always
  // read, also by a backend whose load_transactions() may leave its ids to a unique key.
  virtual Status load_referenced(std::span<const std::string> ids, core::LedgerState& state) {
    return load_transactions(ids, state);
  }
  // The owners of the reference keys among `keys` that a committed deposit or withdrawal
  // took (--unique-references), into state.reference_owners. Always read.
  virtual Status load_reference_owners(std::span<const std::string> keys, core::LedgerState& state) = 0;
  // Each of `sources` (accounts this batch has locked) with its committed debits
  // (core::counts_as_debit) in the risk windows ending at `now_ms`, into state.velocity:
  // those created after now_ms - core::risk_minute_ms counted, after now_ms -
  // core::risk_day_ms summed. Read only for a batch risk rules with a velocity condition
  // decide. MySQL reads the source's debits of the last day each time (one index range);
  // SQLite reads them once and keeps them up to date as it commits.
  virtual Status load_velocity(std::span<const std::string> sources, int64_t now_ms, core::LedgerState& state) = 0;
  // Whether another writer may change a stored row between its load and the lock of its
  // accounts (a database several replicas write); a single writer's rows stay as loaded.
  virtual bool concurrent_writers() const { return false; }
  // Writes the effects, assigning transaction sequences and audit log ids. The audit
  // records are sealed (core::seal_audit) when they reach the audit log, in commit order.
  virtual Status write(core::BatchEffects& effects) = 0;
};

Result<core::BatchEffects> run_batch(BatchTransaction& transaction,
                                     std::span<const core::Operation> operations,
                                     int64_t now_ms);

}  // namespace balanced::storage
