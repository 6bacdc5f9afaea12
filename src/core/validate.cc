#include "core/validate.h"

#include <chrono>
#include <charconv>

#include "core/types.h"

namespace balanced::core {
namespace {

bool is_id_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == ':' || c == '-';
}

bool is_id(std::string_view text, size_t bytes_max) {
  if (text.empty() || text.size() > bytes_max) return false;
  for (char c : text) {
    if (!is_id_char(c)) return false;
  }
  return true;
}

bool is_printable(std::string_view text, size_t bytes_max) {
  if (text.empty() || text.size() > bytes_max) return false;
  for (char c : text) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace

bool is_valid_account_number(std::string_view number) {
  return is_id(number, account_number_bytes_max);
}

bool is_valid_currency(std::string_view currency) {
  if (currency.size() != 3) return false;
  for (char c : currency) {
    if (c < 'A' || c > 'Z') return false;
  }
  return true;
}

bool is_valid_transaction_id(std::string_view id) { return is_id(id, transaction_id_bytes_max); }

bool is_valid_client_timestamp(std::string_view timestamp) {
  return is_printable(timestamp, client_timestamp_bytes_max);
}

bool is_valid_operator(std::string_view name) { return is_printable(name, operator_bytes_max); }

std::optional<int64_t> parse_int64(std::string_view text) {
  if (text.empty() || text.front() == '+') return std::nullopt;
  int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

namespace {

// `count` digits at text[at]; nullopt when any is not a digit.
std::optional<int> digits(std::string_view text, size_t at, size_t count) {
  if (at + count > text.size()) return std::nullopt;
  int value = 0;
  for (size_t i = at; i < at + count; ++i) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

}  // namespace

std::optional<int64_t> parse_rfc3339_ms(std::string_view text) {
  using namespace std::chrono;
  // 2026-12-06T23:40:00 is 19 characters; then a fraction, then the offset.
  if (text.size() < 20 || text[4] != '-' || text[7] != '-' || (text[10] != 'T' && text[10] != 't') ||
      text[13] != ':' || text[16] != ':') {
    return std::nullopt;
  }
  const auto y = digits(text, 0, 4), mo = digits(text, 5, 2), d = digits(text, 8, 2);
  const auto h = digits(text, 11, 2), mi = digits(text, 14, 2), s = digits(text, 17, 2);
  if (!y || !mo || !d || !h || !mi || !s || *y < 1970 || *h > 23 || *mi > 59 || *s > 59) return std::nullopt;
  const year_month_day date{year{*y}, month{static_cast<unsigned>(*mo)}, day{static_cast<unsigned>(*d)}};
  if (!date.ok()) return std::nullopt;
  size_t at = 19;
  int64_t millis = 0;
  if (text[at] == '.') {
    const size_t first = ++at;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
      if (at - first < 3) millis = millis * 10 + (text[at] - '0');
      ++at;
    }
    if (at == first || at - first > 9) return std::nullopt;
    for (size_t n = at - first; n < 3; ++n) millis *= 10;
  }
  int64_t offset_minutes = 0;
  if (at < text.size() && (text[at] == 'Z' || text[at] == 'z')) {
    ++at;
  } else if (at + 6 == text.size() && (text[at] == '+' || text[at] == '-') && text[at + 3] == ':') {
    const auto oh = digits(text, at + 1, 2), om = digits(text, at + 4, 2);
    if (!oh || !om || *oh > 23 || *om > 59) return std::nullopt;
    offset_minutes = (*oh * 60 + *om) * (text[at] == '-' ? -1 : 1);
    at += 6;
  } else {
    return std::nullopt;
  }
  if (at != text.size()) return std::nullopt;
  const int64_t days_since_epoch = sys_days{date}.time_since_epoch().count();
  const int64_t seconds = days_since_epoch * 86'400 + *h * 3'600 + *mi * 60 + *s - offset_minutes * 60;
  return seconds * 1000 + millis;
}

}  // namespace balanced::core
