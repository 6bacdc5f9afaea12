// JSON as I-JSON (RFC 7493) has it: UTF-8 only (no invalid byte, no lone surrogate
// escape), and no object with a repeated member name. Boost.JSON's own parser keeps the
// last of repeated names without a word, so `{"amount":1,"amount":100}` would be read as
// 100 by one reader and 1 by another; both binaries parse request bodies through here.
// Numbers stay as Boost.JSON reads them (int64 amounts exactly).
#pragma once

#include <boost/json/value.hpp>
#include <cstddef>
#include <string_view>

#include "core/codes.h"

namespace balanced::core {

// Objects and arrays nested deeper than this are refused.
inline constexpr size_t json_depth_max = 8;

// The value `text` holds; Code::invalid_request (the detail says what is wrong) for text
// that is not one I-JSON value.
Result<boost::json::value> parse_strict_json(std::string_view text, size_t depth_max = json_depth_max);

// The same checks, without building the value: the gateway's, before it forwards a body.
Status check_strict_json(std::string_view text, size_t depth_max = json_depth_max);

}  // namespace balanced::core
