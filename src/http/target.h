// Request-target decoding (RFC 3986 percent-encoding, and the form encoding of query
// strings and x-www-form-urlencoded bodies). Pure functions, fuzzable.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace balanced::http {

// Percent-decodes `text`; with `plus_is_space`, '+' decodes to ' ' (form encoding).
// nullopt on a malformed escape or a decoded NUL.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space);

// Decodes "a=1&b=two" into pairs, in order; false when any part is malformed.
bool decode_form(std::string_view text, std::vector<std::pair<std::string, std::string>>& out);

}  // namespace balanced::http
