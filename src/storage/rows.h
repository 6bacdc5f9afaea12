// The columns of DESIGN.md §3 in the order every backend selects them, and the reading
// of one row of each table into the core's values. A Row is any cursor with
// text(column) and int64(column) (SQLite statements, MySQL result rows).
#pragma once

#include <string>

#include "core/types.h"

namespace balanced::storage {

inline constexpr const char* kAccountColumns =
    "account_number, currency, balance, overdraft_limit, version, created_at, updated_at";
inline constexpr const char* kTransactionColumns =
    "sequence, transaction_id, type, source_account, destination_account, amount, currency, "
    "status, reject_code, source_balance_after, destination_balance_after, request_hash, "
    "client_timestamp, created_at";

template <typename Row>
core::Account read_account(const Row& r) {
  return core::Account{.number = r.text(0),
                       .currency = r.text(1),
                       .balance = r.int64(2),
                       .overdraft_limit = r.int64(3),
                       .version = r.int64(4),
                       .created_at_ms = r.int64(5),
                       .updated_at_ms = r.int64(6)};
}

template <typename Row>
core::Transaction read_transaction(const Row& r) {
  core::Transaction t;
  t.sequence = r.int64(0);
  t.id = r.text(1);
  t.type = core::type_from_name(r.text(2)).value_or(core::TransactionType::transfer);
  t.source = r.text(3);
  t.destination = r.text(4);
  t.amount = r.int64(5);
  t.currency = r.text(6);
  t.status = core::status_from_name(r.text(7)).value_or(core::TransactionStatus::rejected);
  const std::string reject = r.text(8);  // NULL reads as empty
  t.reject_code = reject.empty() ? Code::ok : code_from_name(reject);
  t.source_balance_after = r.int64(9);
  t.destination_balance_after = r.int64(10);
  t.request_hash = r.text(11);
  t.client_timestamp = r.text(12);
  t.created_at_ms = r.int64(13);
  return t;
}

}  // namespace balanced::storage
