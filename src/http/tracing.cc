#include "http/tracing.h"

#include <algorithm>
#include <cstdint>
#include <random>

namespace balanced::http {
namespace {

bool is_hex(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

std::string random_hex(size_t digits) {
  thread_local std::mt19937_64 random{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(digits);
  while (out.size() < digits) {
    uint64_t bits = random();
    for (int i = 0; i < 16 && out.size() < digits; ++i, bits >>= 4) out.push_back(kHex[bits & 15]);
  }
  return out;
}


std::string request_id_of(const Request& request) {
  const std::string_view sent = request.header("X-Request-Id");
  const bool valid = !sent.empty() && sent.size() <= 128 &&
                     std::all_of(sent.begin(), sent.end(), [](char c) {
                       return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                              c == '.' || c == '_' || c == '-';
                     });
  return valid ? std::string(sent) : random_hex(32);
}

std::string traceparent_of(const Request& request, std::string& trace_id) {
  // version "00" - 32 hex trace id - 16 hex parent id - 2 hex flags, ids not all zero.
  const std::string_view sent = request.header("traceparent");
  if (sent.size() == 55 && sent.substr(0, 3) == "00-" && sent[35] == '-' && sent[52] == '-') {
    const auto trace = sent.substr(3, 32);
    const auto parent = sent.substr(36, 16);
    const auto flags = sent.substr(53, 2);
    if (is_hex(trace) && is_hex(parent) && is_hex(flags) && trace != std::string(32, '0') &&
        parent != std::string(16, '0')) {
      trace_id = std::string(trace);
      return std::string(sent);
    }
  }
  trace_id = random_hex(32);
  return "00-" + trace_id + "-" + random_hex(16) + "-01";
}

}  // namespace balanced::http
