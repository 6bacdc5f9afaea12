// What the gateway reads off a request before anything else (its id and trace context:
// http/tracing.h): behind trusted proxies, its client's address. Pure, fuzzed.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.h"

namespace balanced::gateway {

// An IPv4 or IPv6 network, "10.0.0.0/8" or "::1/128".
struct Cidr {
  std::array<uint8_t, 16> address{};
  int prefix = 0;
  bool v6 = false;
  bool contains(std::string_view ip) const;
};
std::optional<Cidr> parse_cidr(std::string_view text);

// The client: the peer, unless it is a trusted proxy; then the right-most address of
// X-Forwarded-For that is not a trusted proxy (a malformed entry stops the walk).
std::string client_address(std::string_view peer, std::string_view forwarded_for,
                           const std::vector<Cidr>& trusted_proxies);

}  // namespace balanced::gateway
