#include "core/reports.h"

#include <charconv>
#include <cstdio>
#include <limits>

namespace balanced::core {
namespace {

int64_t saturating_add(int64_t a, int64_t b) {
  int64_t sum = 0;
  if (!__builtin_add_overflow(a, b, &sum)) return sum;
  return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
}

// Days from 1970-01-01 to the civil date (proleptic Gregorian; H. Hinnant's algorithm).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

}  // namespace

int64_t utc_day(int64_t unix_ms) {
  return unix_ms >= 0 ? unix_ms / day_ms : -((-unix_ms + day_ms - 1) / day_ms);
}

std::optional<int64_t> parse_utc_day(std::string_view text) {
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return std::nullopt;
  auto number = [&text](size_t at, size_t length) -> std::optional<unsigned> {
    unsigned value = 0;
    for (size_t i = at; i < at + length; ++i) {
      if (text[i] < '0' || text[i] > '9') return std::nullopt;
      value = value * 10 + static_cast<unsigned>(text[i] - '0');
    }
    return value;
  };
  const auto year = number(0, 4);
  const auto month = number(5, 2);
  const auto day = number(8, 2);
  if (!year || !month || !day || *year < 1970 || *month < 1 || *month > 12 || *day < 1) return std::nullopt;
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (*year % 4 == 0 && *year % 100 != 0) || *year % 400 == 0;
  if (*day > kDays[*month - 1] + (*month == 2 && leap ? 1 : 0)) return std::nullopt;
  return days_from_civil(*year, *month, *day);
}

std::string format_utc_day(int64_t day) {
  // The inverse of days_from_civil.
  const int64_t z = day + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  char out[16];
  const int year = static_cast<int>(y + (m <= 2));
  std::snprintf(out, sizeof out, "%04d-%02u-%02u", year, m, d);
  return out;
}

bool moves_balance(TransactionType type) {
  return type != TransactionType::hold && type != TransactionType::void_ && type != TransactionType::expire;
}

void add_daily_total(DailyTotal& total, const DailyTotal& more) {
  total.credits = saturating_add(total.credits, more.credits);
  total.debits = saturating_add(total.debits, more.debits);
  total.count = saturating_add(total.count, more.count);
}

void add_volume(Volume& volume, const Volume& more) {
  volume.count = saturating_add(volume.count, more.count);
  volume.amount = saturating_add(volume.amount, more.amount);
}

void add_volumes(const Transaction& transaction, Volumes& volumes) {
  if (transaction.status != TransactionStatus::committed) return;
  const int64_t hour = transaction.created_at_ms >= 0 ? transaction.created_at_ms / hour_ms
                                                      : -((-transaction.created_at_ms + hour_ms - 1) / hour_ms);
  add_volume(volumes[VolumeKey{transaction.currency, hour, transaction.type}],
             Volume{.count = 1, .amount = transaction.amount});
}

size_t DailyKeyHash::operator()(const DailyKeyView& key) const noexcept {
  const size_t h = std::hash<std::string_view>{}(key.account);
  return h ^ (static_cast<size_t>(key.day) * 0x9e3779b97f4a7c15ULL + static_cast<size_t>(key.type) + (h << 6) + (h >> 2));
}

namespace {

DailyTotal& total_of(DailyTotals& totals, const DailyKeyView& key) {
  return totals[DailyKey{std::string(key.account), key.day, key.type}];
}

DailyTotal& total_of(UnorderedDailyTotals& totals, const DailyKeyView& key) {
  if (auto found = totals.find(key); found != totals.end()) return found->second;
  return totals.emplace(DailyKey{std::string(key.account), key.day, key.type}, DailyTotal{}).first->second;
}

template <typename Totals>
void add_daily_totals_to(const Transaction& transaction, Totals& totals) {
  if (transaction.status != TransactionStatus::committed || !moves_balance(transaction.type)) return;
  const int64_t day = utc_day(transaction.created_at_ms);
  add_daily_total(total_of(totals, DailyKeyView{transaction.source, day, transaction.type}),
                  DailyTotal{.debits = transaction.amount, .count = 1});
  add_daily_total(total_of(totals, DailyKeyView{transaction.destination, day, transaction.type}),
                  DailyTotal{.credits = transaction.amount, .count = 1});
}

}  // namespace

void add_daily_totals(const Transaction& transaction, DailyTotals& totals) { add_daily_totals_to(transaction, totals); }

void add_daily_totals(const Transaction& transaction, UnorderedDailyTotals& totals) {
  add_daily_totals_to(transaction, totals);
}


}  // namespace balanced::core
