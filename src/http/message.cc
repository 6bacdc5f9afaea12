#include "http/message.h"

#include <algorithm>

namespace balanced::http {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

namespace {

std::string_view find_header(const Headers& headers, std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (iequals(key, name)) return value;
  }
  return {};
}

}  // namespace

std::string_view Request::header(std::string_view name) const { return find_header(headers, name); }

bool Request::has_header(std::string_view name) const {
  return std::any_of(headers.begin(), headers.end(),
                     [name](const auto& header) { return iequals(header.first, name); });
}

void Request::remove_header(std::string_view name) {
  std::erase_if(headers, [name](const auto& header) { return iequals(header.first, name); });
}

void Request::set_header(std::string_view name, std::string value) {
  remove_header(name);
  headers.emplace_back(std::string(name), std::move(value));
}

std::string_view Response::header(std::string_view name) const {
  return find_header(headers, name);
}

void Response::set_header(std::string_view name, std::string value) {
  std::erase_if(headers, [name](const auto& header) { return iequals(header.first, name); });
  headers.emplace_back(std::string(name), std::move(value));
}

}  // namespace balanced::http
