// One batch inside one open database transaction on a committer connection: the
// accounts locked FOR UPDATE in key order, then every row written in two round trips,
// the second ending with COMMIT (see mysql_store.h for why this order is safe).
#pragma once

#include <span>
#include <string>
#include <vector>

#include "storage/batch.h"
#include "storage/mysql/debit_windows.h"
#include "storage/mysql/mysql_db.h"
#include "storage/store.h"

namespace balanced::storage::mysql {

class BatchWriter final : public BatchTransaction {
 public:
  // Without `look_up_ids` the batch assumes every transaction id is new and lets the
  // unique key catch a repeated one (the caller then runs the batch again with it).
  // `consecutive_ids`: the server gives a multi-row INSERT consecutive AUTO_INCREMENT ids.
  BatchWriter(Connection& c, size_t rows_max, bool consecutive_ids, bool look_up_ids, DebitWindows& windows,
              ApplyTimings& timings)
      : c_(c),
        windows_(windows),
        rows_max_(rows_max),
        consecutive_ids_(consecutive_ids),
        look_up_ids_(look_up_ids),
        timings_(timings) {}

  Status load_accounts(std::span<const std::string> numbers, core::LedgerState& state) override;
  Status load_referenced(std::span<const std::string> ids, core::LedgerState& state) override;
  bool concurrent_writers() const override { return true; }
  Status load_reference_owners(std::span<const std::string> keys, core::LedgerState& state) override;
  // READ COMMITTED, after the sources' rows are locked: every debit of theirs committed
  // before is seen. A source whose window this replica keeps reads only its rows past the
  // sequence it saw last; another its day, once (debit_windows.h).
  Status load_velocity(std::span<const std::string> sources, int64_t now_ms, core::LedgerState& state) override;
  Status load_transactions(std::span<const std::string> ids, core::LedgerState& state) override;
  // Two round trips: the account and transaction rows, then (details rendered with the
  // sequences the first assigned) the audit records and the COMMIT.
  Status write(core::BatchEffects& effects) override;

 private:
  // One statement of a multi-statement round trip, and what its result means.
  struct Step {
    std::string sql;
    enum class Kind { plain, update_accounts, insert_transactions, update_transaction, take_event_ids } kind;
    size_t start;  // the rows of the effects it writes
    size_t end;
  };

  // Runs the steps in one round trip; assigns the sequences and event ids they took.
  Status run(const std::vector<Step>& steps, core::BatchEffects& effects);
  void add_insert_events(core::BatchEffects& effects, std::vector<Step>& steps);
  void add_insert_accounts(const std::vector<core::Account>& accounts, std::vector<Step>& steps);
  void add_update_accounts(const std::vector<core::Account>& accounts, std::vector<Step>& steps);
  void append_account_rows(const std::vector<core::Account>& accounts, size_t start, size_t end,
                           std::string& sql);
  void add_update_transactions(const std::vector<core::Transaction>& transactions, std::vector<Step>& steps);
  void add_insert_references(const std::vector<core::ReferenceClaim>& claims, std::vector<Step>& steps);
  void add_daily_totals(const std::vector<core::Transaction>& transactions, std::vector<Step>& steps);
  void add_volumes(const std::vector<core::Transaction>& transactions, std::vector<Step>& steps);
  void add_insert_transactions(const std::vector<core::Transaction>& transactions,
                               std::vector<Step>& steps);
  Status assign_sequences(std::vector<core::Transaction>& transactions, size_t start, size_t end,
                          uint64_t first_id);
  void add_insert_audit(const std::vector<core::AuditRecord>& audit, std::vector<Step>& steps);

  Connection& c_;
  DebitWindows& windows_;
  const size_t rows_max_;
  const bool consecutive_ids_;
  const bool look_up_ids_;
  ApplyTimings& timings_;
};

}  // namespace balanced::storage::mysql
