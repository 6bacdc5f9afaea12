#include "storage/batch.h"

namespace balanced::storage {

Result<core::BatchEffects> run_batch(BatchTransaction& transaction,
                                     std::span<const core::Operation> operations,
                                     int64_t now_ms) {
  core::LedgerState state;
  // The rows first: a capture's, void's or refund's accounts are its stored row's parties.
  const auto ids = core::transaction_ids(operations);
  if (auto s = transaction.load_transactions(ids, state); !s.ok()) return s.error();
  // Those a capture, void or refund names, if load_transactions() left them out.
  std::vector<std::string> referenced = core::referenced_transactions(operations);
  std::erase_if(referenced, [&state](const std::string& id) { return state.existing.contains(id); });
  if (!referenced.empty()) {
    if (auto s = transaction.load_referenced(referenced, state); !s.ok()) return s.error();
  }
  if (const auto keys = core::reference_keys(operations); !keys.empty()) {
    if (auto s = transaction.load_reference_owners(keys, state); !s.ok()) return s.error();
  }
  const auto numbers = core::required_accounts(operations, state);
  state.accounts.reserve(numbers.size());
  if (auto s = transaction.load_accounts(numbers, state); !s.ok()) return s.error();
  // Every change of a hold or of a refunded row changes its parties' accounts, now locked
  // by this batch: with other writers, read what the rows are now.
  if (transaction.concurrent_writers()) {
    referenced = core::referenced_transactions(operations);
    if (!referenced.empty()) {
      if (auto s = transaction.load_referenced(referenced, state); !s.ok()) return s.error();
    }
  }
  // With the accounts locked, no other writer adds a debit of theirs until this commits.
  if (const auto sources = core::velocity_sources(operations, state); !sources.empty()) {
    if (auto s = transaction.load_velocity(sources, now_ms, state); !s.ok()) return s.error();
  }
  core::BatchEffects effects = core::apply_batch(operations, state, now_ms);
  if (auto s = transaction.write(effects); !s.ok()) return s.error();
  core::attach_sequences(effects);
  return effects;
}

}  // namespace balanced::storage
