#include "gateway/request_info.h"

#include <arpa/inet.h>

#include <algorithm>

#include "core/validate.h"

namespace balanced::gateway {
namespace {

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
