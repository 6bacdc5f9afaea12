// The stored fields of accounts and transactions, listed ONCE, in column order (DESIGN.md
// §3). Every backend's column lists, inserts and row reads, and the SQLite commit log's
// records, walk these two lists, so a new field is added here and nowhere else.
//
// A field's value is one of eight kinds: int64_t, std::string, core::AccountType,
// core::AccountStatus, core::TransactionType, core::TransactionStatus, core::HoldStatus,
// Code. SQL stores an enum by its name (sql_text), a reject code of `ok` and a hold status
// of `none` as NULL; the commit log stores an enum as its integer. A field added
// after the first release says since which commit-log record format it is stored
// (Column::since): older records are read without it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "core/codes.h"
#include "core/reports.h"
#include "core/types.h"

namespace balanced::storage {

// A stored field's column name, and the commit-log record format that first holds it.
struct Column {
  std::string_view name;
  int since = 1;
  bool fixed = false;  // set when the row is inserted, never updated
  // A transaction's state: the only columns of its row that change after the insert (a
  // hold ended, a transfer refunded).
  bool state = false;
  // Empty or zero on most rows (a transfer's): a writer may leave it to the column's
  // default when every rare field of the row is (SQLite binds 9 parameters fewer).
  bool rare = false;
  constexpr operator std::string_view() const { return name; }  // NOLINT: a column is its name
};

// Calls field(column, member) for each stored field of an account, in column order.
// A is core::Account or const core::Account.
template <typename A, typename Field>
void for_each_account_field(A& a, Field&& field) {
  field(Column{"account_number", 1, true}, a.number);
  field(Column{"currency", 1, true}, a.currency);
  field(Column{"balance"}, a.balance);
  field(Column{"overdraft_limit"}, a.overdraft_limit);
  field(Column{"version"}, a.version);
  field(Column{"created_at", 1, true}, a.created_at_ms);
  field(Column{"updated_at"}, a.updated_at_ms);
  field(Column{"type", 3, true}, a.type);
  field(Column{"status", 3}, a.status);
  field(Column{"pending_debits", 3}, a.pending_debits);
  field(Column{"pending_credits", 3}, a.pending_credits);
  field(Column{"metadata", 3}, a.metadata);
}

// The transaction column the database may assign (MySQL's AUTO_INCREMENT): the first.
inline constexpr std::string_view kSequenceColumn = "sequence";

// The same for a transaction. T is core::Transaction or const core::Transaction.
template <typename T, typename Field>
void for_each_transaction_field(T& t, Field&& field) {
  field(Column{kSequenceColumn}, t.sequence);
  field(Column{"transaction_id"}, t.id);
  field(Column{"type"}, t.type);
  field(Column{"source_account"}, t.source);
  field(Column{"destination_account"}, t.destination);
  field(Column{"amount"}, t.amount);
  field(Column{"currency"}, t.currency);
  field(Column{"status"}, t.status);
  field(Column{"reject_code"}, t.reject_code);
  field(Column{"source_balance_after"}, t.source_balance_after);
  field(Column{"destination_balance_after"}, t.destination_balance_after);
  field(Column{"request_hash"}, t.request_hash);
  field(Column{"client_timestamp"}, t.client_timestamp);
  field(Column{"created_at"}, t.created_at_ms);
  field(Column{"reference", 2, false, false, true}, t.reference);
  field(Column{"metadata", 2, false, false, true}, t.metadata);
  field(Column{"source_version_after", 2}, t.source_version_after);
  field(Column{"destination_version_after", 2}, t.destination_version_after);
  field(Column{"hold_id", 4, false, false, true}, t.hold_id);
  field(Column{"refund_of", 4, false, false, true}, t.refund_of);
  field(Column{"reason", 4, false, false, true}, t.reason);
  field(Column{"expires_at", 4, false, false, true}, t.expires_at_ms);
  field(Column{"hold_status", 4, false, true, true}, t.hold_status);
  field(Column{"settled_amount", 4, false, true, true}, t.settled_amount);
  field(Column{"settled_by", 4, false, true, true}, t.settled_by);
  field(Column{"risk_decision", 7, false, false, true}, t.risk_decision);
  field(Column{"risk_rule", 7, false, false, true}, t.risk_rule);
}

// The state columns of a transaction, each as `column = <assign(column)>`, joined with
// ", " (an update of an earlier row).
template <typename Assign>
std::string transaction_state_updates(Assign assign) {
  core::Transaction transaction;
  std::string out;
  for_each_transaction_field(transaction, [&](Column column, auto&) {
    if (!column.state) return;
    if (!out.empty()) out += ", ";
    out += std::string(column.name) + " = " + assign(column.name);
  });
  return out;
}

// A field at its default (empty, zero, an enum's first value): the column's default too.
inline bool is_default(int64_t value) { return value == 0; }
inline bool is_default(const std::string& text) { return text.empty(); }
template <typename Enum>
  requires std::is_enum_v<Enum>
bool is_default(Enum value) {
  return static_cast<int64_t>(value) == 0;
}

// Whether every rare field of `t` (Column::rare) is at its default.
inline bool rare_fields_default(const core::Transaction& t) {
  bool all = true;
  for_each_transaction_field(t, [&all](Column column, const auto& value) {
    if (column.rare && !is_default(value)) all = false;
  });
  return all;
}

// An enum field as SQL stores it.
inline std::string_view sql_text(core::AccountType type) { return core::account_type_name(type); }
inline std::string_view sql_text(core::AccountStatus status) { return core::account_status_name(status); }
inline std::string_view sql_text(core::TransactionType type) { return core::type_name(type); }
inline std::string_view sql_text(core::TransactionStatus status) { return core::status_name(status); }
inline std::optional<std::string_view> sql_text(core::HoldStatus status) {  // nullopt: NULL
  if (status == core::HoldStatus::none) return std::nullopt;
  return core::hold_status_name(status);
}
inline std::optional<std::string_view> sql_text(Code reject) {  // nullopt: NULL
  if (reject == Code::ok) return std::nullopt;
  return code_name(reject);
}

namespace rows_detail {
// The columns `walk` visits that `keep` keeps, joined with ", ".
template <typename Record, typename Walk, typename Keep>
std::string join_columns(Walk walk, Keep keep) {
  Record record;
  std::string columns;
  walk(record, [&](Column column, auto&) {
    if (!keep(column)) return;
    if (!columns.empty()) columns += ", ";
    columns += column.name;
  });
  return columns;
}
constexpr auto kTransactionWalk = [](auto& t, auto&& f) { for_each_transaction_field(t, f); };
}  // namespace rows_detail

// "account_number, currency, ...": the columns in field order.
inline const std::string& account_columns() {
  static const std::string columns = rows_detail::join_columns<core::Account>(
      [](auto& a, auto&& f) { for_each_account_field(a, f); }, [](Column) { return true; });
  return columns;
}
inline const std::string& transaction_columns() {
  static const std::string columns =
      rows_detail::join_columns<core::Transaction>(rows_detail::kTransactionWalk, [](Column) { return true; });
  return columns;
}
// The transaction columns but the rare ones, for a row whose rare fields are all default.
inline const std::string& transaction_common_columns() {
  static const std::string columns =
      rows_detail::join_columns<core::Transaction>(rows_detail::kTransactionWalk, [](Column c) { return !c.rare; });
  return columns;
}
// The account columns an update rewrites (every one but the fixed), each as
// `column = <assign(column)>`, joined with ", ": SQLite's excluded.column, MySQL's
// VALUES(column).
template <typename Assign>
std::string account_updates(Assign assign) {
  core::Account account;
  std::string out;
  for_each_account_field(account, [&](Column column, auto&) {
    if (column.fixed) return;
    if (!out.empty()) out += ", ";
    out += std::string(column.name) + " = " + assign(column.name);
  });
  return out;
}

// Without `sequence`, for a database that assigns it.
inline const std::string& transaction_columns_but_sequence() {
  static const std::string columns = rows_detail::join_columns<core::Transaction>(
      rows_detail::kTransactionWalk, [](Column c) { return c.name != kSequenceColumn; });
  return columns;
}

// One column of a row into a field. A Row is any cursor with text(column) and
// int64(column) (SQLite statements, MySQL result rows); NULL reads as empty or 0.
template <typename Row>
void read_column(const Row& r, int column, int64_t& value) {
  value = r.int64(column);
}
template <typename Row>
void read_column(const Row& r, int column, std::string& value) {
  value = r.text(column);
}
template <typename Row>
void read_column(const Row& r, int column, core::AccountType& value) {
  value = core::account_type_from_name(r.text(column)).value_or(core::AccountType::checking);
}
template <typename Row>
void read_column(const Row& r, int column, core::AccountStatus& value) {
  value = core::account_status_from_name(r.text(column)).value_or(core::AccountStatus::active);
}
template <typename Row>
void read_column(const Row& r, int column, core::TransactionType& value) {
  value = core::type_from_name(r.text(column)).value_or(core::TransactionType::transfer);
}
template <typename Row>
void read_column(const Row& r, int column, core::TransactionStatus& value) {
  value = core::status_from_name(r.text(column)).value_or(core::TransactionStatus::rejected);
}
template <typename Row>
void read_column(const Row& r, int column, core::HoldStatus& value) {
  value = core::hold_status_from_name(r.text(column)).value_or(core::HoldStatus::none);
}
template <typename Row>
void read_column(const Row& r, int column, Code& value) {
  const std::string name = r.text(column);
  value = name.empty() ? Code::ok : code_from_name(name);
}

// The stored reports (DESIGN.md section 11), every row, for a store's scan(): daily
// totals, then volumes (one row per slot: the verifier adds them up), each handed to
// `visitor` (ScanVisitor). `for_each_row(sql, on_row)` runs one statement of the store
// and returns its status. A row of a type this release does not know is reported, not
// skipped: the scan then fails naming it.
template <typename Visitor, typename ForEachRow>
auto scan_stored_reports(Visitor& visitor, ForEachRow&& for_each_row) {
  std::string unknown;
  auto status = for_each_row("SELECT account, day, type, credits, debits, count FROM daily_totals",
                             [&](const auto& r) {
                               if (const auto type = core::type_from_name(r.text(2))) {
                                 visitor.daily_total(
                                     core::DailyKey{.account = r.text(0), .day = r.int64(1), .type = *type},
                                     core::DailyTotal{.credits = r.int64(3), .debits = r.int64(4), .count = r.int64(5)});
                               } else {
                                 unknown = "daily_totals: unknown type " + r.text(2);
                               }
                             });
  if (status.ok()) {
    status = for_each_row("SELECT currency, hour, type, count, amount FROM volume_totals", [&](const auto& r) {
      if (const auto type = core::type_from_name(r.text(2))) {
        visitor.volume(core::VolumeKey{.currency = r.text(0), .hour = r.int64(1), .type = *type},
                       core::Volume{.count = r.int64(3), .amount = r.int64(4)});
      } else {
        unknown = "volume_totals: unknown type " + r.text(2);
      }
    });
  }
  if (status.ok() && !unknown.empty()) status = decltype(status)(Code::internal, unknown);
  return status;
}

// A row selected with account_columns() (from column 0).
template <typename Row>
core::Account read_account(const Row& r) {
  core::Account a;
  int column = 0;
  for_each_account_field(a, [&](std::string_view, auto& value) { read_column(r, column++, value); });
  return a;
}

// A row selected with transaction_columns() (from column 0).
template <typename Row>
core::Transaction read_transaction(const Row& r) {
  core::Transaction t;
  int column = 0;
  for_each_transaction_field(t, [&](std::string_view, auto& value) { read_column(r, column++, value); });
  return t;
}

}  // namespace balanced::storage
