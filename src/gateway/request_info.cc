#include "gateway/request_info.h"

#include <arpa/inet.h>

#include <algorithm>
#include <random>

#include "core/validate.h"

namespace balanced::gateway {
namespace {

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

bool is_hex(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool parse_ip(std::string_view text, std::array<uint8_t, 16>& out, bool& v6) {
  const std::string ip(text);
  v6 = ip.find(':') != std::string::npos;
  out.fill(0);
  return inet_pton(v6 ? AF_INET6 : AF_INET, ip.c_str(), out.data()) == 1;
}

}  // namespace

bool Cidr::contains(std::string_view ip) const {
  std::array<uint8_t, 16> bytes{};
  bool is_v6 = false;
  if (!parse_ip(ip, bytes, is_v6) || is_v6 != v6) return false;
  int bits = prefix;
  for (size_t i = 0; bits > 0; ++i, bits -= 8) {
    const uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
    if ((bytes[i] & mask) != (address[i] & mask)) return false;
  }
  return true;
}

std::optional<Cidr> parse_cidr(std::string_view text) {
  const size_t slash = text.find('/');
  Cidr cidr;
  if (!parse_ip(text.substr(0, slash), cidr.address, cidr.v6)) return std::nullopt;
  const int max = cidr.v6 ? 128 : 32;
  cidr.prefix = max;
  if (slash != std::string_view::npos) {
    const auto bits = core::parse_int64(text.substr(slash + 1));
    if (!bits || *bits < 0 || *bits > max) return std::nullopt;
    cidr.prefix = static_cast<int>(*bits);
  }
  return cidr;
}

std::string request_id_of(const http::Request& request) {
  const std::string_view sent = request.header("X-Request-Id");
  const bool valid = !sent.empty() && sent.size() <= 128 &&
                     std::all_of(sent.begin(), sent.end(), [](char c) {
                       return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                              c == '.' || c == '_' || c == '-';
                     });
  return valid ? std::string(sent) : random_hex(32);
}

std::string traceparent_of(const http::Request& request, std::string& trace_id) {
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

std::string client_address(std::string_view peer, std::string_view forwarded_for,
                           const std::vector<Cidr>& trusted_proxies) {
  auto trusted = [&trusted_proxies](std::string_view ip) {
    return std::any_of(trusted_proxies.begin(), trusted_proxies.end(),
                       [ip](const Cidr& cidr) { return cidr.contains(ip); });
  };
  std::string client(peer);
  if (!trusted(client)) return client;
  // Walk X-Forwarded-For from the right: the first address not of a trusted proxy.
  while (!forwarded_for.empty()) {
    const size_t comma = forwarded_for.rfind(',');
    std::string_view hop = comma == std::string_view::npos ? forwarded_for : forwarded_for.substr(comma + 1);
    forwarded_for = comma == std::string_view::npos ? std::string_view() : forwarded_for.substr(0, comma);
    while (hop.starts_with(' ')) hop.remove_prefix(1);
    while (hop.ends_with(' ')) hop.remove_suffix(1);
    std::array<uint8_t, 16> ignored{};
    bool v6 = false;
    if (!parse_ip(hop, ignored, v6)) break;
    client = std::string(hop);
    if (!trusted(client)) break;
  }
  return client;
}

}  // namespace balanced::gateway
