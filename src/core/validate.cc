#include "core/validate.h"

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

}  // namespace balanced::core
