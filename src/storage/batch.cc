#include "storage/batch.h"

namespace balanced::storage {

Result<core::BatchEffects> run_batch(BatchTransaction& transaction,
                                     std::span<const core::Operation> operations,
                                     int64_t now_ms) {
  core::LedgerState state;
  const auto numbers = core::required_accounts(operations);
  if (auto s = transaction.load_accounts(numbers, state); !s.ok()) return s.error();
  const auto ids = core::transaction_ids(operations);
  if (auto s = transaction.load_transactions(ids, state); !s.ok()) return s.error();
  core::BatchEffects effects = core::apply_batch(operations, state, now_ms);
  if (auto s = transaction.write(effects); !s.ok()) return s.error();
  core::attach_sequences(effects);
  return effects;
}

}  // namespace balanced::storage
