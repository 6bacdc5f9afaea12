#include "net/url.h"

#include <algorithm>
#include <charconv>

namespace balanced::net {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space) {
  // Most text has nothing to decode (every path the API routes): one copy.
  const size_t first = plus_is_space ? text.find_first_of("%+") : text.find('%');
  if (first == std::string_view::npos) return std::string(text);
  std::string out;
  out.reserve(text.size());
  out.append(text.substr(0, first));
  for (size_t i = first; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      const int high = hex_value(text[i + 1]);
      const int low = hex_value(text[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      const char decoded = static_cast<char>(high * 16 + low);
      if (decoded == '\0') return std::nullopt;
      out.push_back(decoded);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

bool decode_form(std::string_view text, std::vector<std::pair<std::string, std::string>>& out) {
  while (!text.empty()) {
    const size_t amp = text.find('&');
    const std::string_view pair = text.substr(0, amp);
    if (!pair.empty()) {
      const size_t eq = pair.find('=');
      auto key = percent_decode(pair.substr(0, eq), true);
      auto value = percent_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true);
      if (!key || !value) return false;
      out.emplace_back(std::move(*key), std::move(*value));
    }
    if (amp == std::string_view::npos) break;
    text.remove_prefix(amp + 1);
  }
  return true;
}

std::string HostPort::text() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::optional<HostPort> parse_host_port(std::string_view text, bool port_zero_ok) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  std::string_view host = text.substr(0, colon);
  if (host.starts_with('[')) {
    if (!host.ends_with(']') || host.size() < 3) return std::nullopt;
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return std::nullopt;  // an IPv6 address needs its brackets
  }
  const std::string_view digits = text.substr(colon + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() ||
      port > 65535 || (port == 0 && !port_zero_ok)) {
    return std::nullopt;
  }
  const bool bad_char = std::any_of(host.begin(), host.end(), [](char c) {
    return c <= ' ' || c == '/' || c == '@' || c == '?' || c == '#' || c == ',' || c == 127;
  });
  if (bad_char) return std::nullopt;
  return HostPort{std::string(host), static_cast<uint16_t>(port)};
}

bool is_loopback_host(std::string_view host) {
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

std::optional<Url> parse_url(std::string_view text) {
  const size_t separator = text.find("://");
  if (separator == std::string_view::npos || separator == 0) return std::nullopt;
  Url url;
  for (char c : text.substr(0, separator)) {
    const char lower = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    if (!((lower >= 'a' && lower <= 'z') || (lower >= '0' && lower <= '9') || lower == '-' ||
          lower == '+' || lower == '.')) {
      return std::nullopt;
    }
    url.scheme.push_back(lower);
  }
  std::string_view rest = text.substr(separator + 3);
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) url.path = std::string(rest.substr(slash));
  // The last '@' ends the credentials: a password may hold '@' only percent-encoded,
  // but be lenient with a raw one as mysql clients are.
  const size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    const std::string_view credentials = authority.substr(0, at);
    const size_t colon = credentials.find(':');
    auto user = percent_decode(credentials.substr(0, colon), false);
    if (!user) return std::nullopt;
    url.user = std::move(*user);
    if (colon != std::string_view::npos) {
      auto password = percent_decode(credentials.substr(colon + 1), false);
      if (!password) return std::nullopt;
      url.password = std::move(*password);
      url.has_password = true;
    }
    authority = authority.substr(at + 1);
  }
  url.authority = std::string(authority);
  return url;
}

}  // namespace balanced::net
