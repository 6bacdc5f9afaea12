// What the reports read (DESIGN.md section 11, Reports), kept in the same commit as the
// postings: per account, UTC day and transaction type, the credits, debits and postings
// that moved the account's balance. A statement over whole days sums them, so its cost
// grows with the days asked for, never with the transactions. Pure.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/types.h"

namespace balanced::core {

inline constexpr int64_t day_ms = 86'400'000;
// Statements and volume reports: the most days one may span (DESIGN.md: 366).
inline constexpr int64_t report_days_max = 366;

// Days since 1970-01-01 (UTC) of an instant; floor, so before 1970 is negative.
int64_t utc_day(int64_t unix_ms);
// "YYYY-MM-DD" as days since 1970-01-01, or nullopt when not a valid date of that form.
std::optional<int64_t> parse_utc_day(std::string_view text);
std::string format_utc_day(int64_t day);

// A hold, void or expire moves pending amounts only; every other committed row moves its
// amount from the source's balance to the destination's.
bool moves_balance(TransactionType type);

struct DailyKey {
  std::string account;
  int64_t day = 0;
  TransactionType type = TransactionType::transfer;
  auto operator<=>(const DailyKey&) const = default;
};
struct DailyTotal {
  int64_t credits = 0;  // minor units into the account
  int64_t debits = 0;   // minor units out of it
  int64_t count = 0;    // postings (one per transaction on each side)
};
using DailyTotals = std::map<DailyKey, DailyTotal>;

// The same totals in no order, for a writer that needs none (SQLite's one writer: MySQL's
// replicas lock the rows in key order): found by hash, without copying the account.
struct DailyKeyView {
  std::string_view account;
  int64_t day = 0;
  TransactionType type = TransactionType::transfer;
};
struct DailyKeyHash {
  using is_transparent = void;
  size_t operator()(const DailyKeyView& key) const noexcept;
  size_t operator()(const DailyKey& key) const noexcept { return (*this)(DailyKeyView{key.account, key.day, key.type}); }
};
struct DailyKeyEqual {
  using is_transparent = void;
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const noexcept {
    return a.day == b.day && a.type == b.type && std::string_view(a.account) == std::string_view(b.account);
  }
};
using UnorderedDailyTotals = std::unordered_map<DailyKey, DailyTotal, DailyKeyHash, DailyKeyEqual>;

// Adds what a committed row moved to `totals`: a debit of its source and a credit of its
// destination on the day of its commit time. Rejections and rows that move no balance
// add nothing. Sums saturate at the int64 limits (a day's flow of one account).
void add_daily_totals(const Transaction& transaction, DailyTotals& totals);
void add_daily_totals(const Transaction& transaction, UnorderedDailyTotals& totals);
// Adds `more` into `total`, saturating.
void add_daily_total(DailyTotal& total, const DailyTotal& more);

// Per currency, UTC hour and type: the committed transactions and their amounts (GET
// /reports/volumes), kept in the same commit. Every committed row counts, holds included.
inline constexpr int64_t hour_ms = 3'600'000;
struct VolumeKey {
  std::string currency;
  int64_t hour = 0;  // hours since 1970-01-01 (UTC)
  TransactionType type = TransactionType::transfer;
  auto operator<=>(const VolumeKey&) const = default;
};
struct Volume {
  int64_t count = 0;
  int64_t amount = 0;  // minor units, saturating
};
using Volumes = std::map<VolumeKey, Volume>;
void add_volumes(const Transaction& transaction, Volumes& volumes);
void add_volume(Volume& volume, const Volume& more);

// One account's statement (GET /accounts/{n}/statement): balances from the balance-after
// chain, flows from the daily totals of the days asked for.
struct Statement {
  std::string account;
  std::string currency;
  int64_t from_day = 0;
  int64_t to_day = 0;  // included
  int64_t opening_balance = 0;
  int64_t closing_balance = 0;
  DailyTotal total;
  std::map<TransactionType, DailyTotal> by_type;
};

}  // namespace balanced::core
