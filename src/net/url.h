// Addresses and URLs, parsed once for every binary: HOST:PORT listen and upstream
// addresses, scheme://user:password@host:port/path URLs (--db, --cache, --upstream,
// --jwks), and the percent-encoding of request targets and form bodies (RFC 3986).
// Pure functions, fuzzable.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace balanced::net {

// The value of a hexadecimal digit (either case), or -1.
int hex_value(char c);

// Percent-decodes `text`; with `plus_is_space`, '+' decodes to ' ' (form encoding).
// nullopt on a malformed escape or a decoded NUL.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space);

// Decodes "a=1&b=two" into pairs, in order; false when any part is malformed.
bool decode_form(std::string_view text, std::vector<std::pair<std::string, std::string>>& out);

struct HostPort {
  std::string host;  // a name, an IPv4 address, or an IPv6 address without brackets
  uint16_t port = 0;
  // "host:port", with brackets around an IPv6 address.
  std::string text() const;
  bool operator==(const HostPort&) const = default;
};

// "host:port", "1.2.3.4:80" or "[::1]:80". With `port_zero_ok`, port 0 ("any free
// port") is accepted. nullopt when malformed or the port is out of range.
std::optional<HostPort> parse_host_port(std::string_view text, bool port_zero_ok = false);

// True for 127.0.0.0/8, ::1 and "localhost".
bool is_loopback_host(std::string_view host);

struct Url {
  std::string scheme;    // lower case, without "://"
  std::string user;      // percent-decoded; empty when absent
  std::string password;  // percent-decoded; empty when absent
  bool has_password = false;
  std::string authority;  // the part after the credentials and before the path, as written
  std::string path;       // from the first '/' after the authority (with the query); may be empty
};

// scheme://[user[:password]@]authority[/path]. The authority is not interpreted (a
// cluster URL holds several host:port pairs); split it with parse_host_port.
std::optional<Url> parse_url(std::string_view text);

}  // namespace balanced::net
