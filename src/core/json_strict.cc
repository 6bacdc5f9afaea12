#include "core/json_strict.h"

#include <algorithm>
#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/value_stack.hpp>
#include <optional>
#include <string>
#include <vector>

namespace balanced::core {
namespace {

namespace json = boost::json;
using boost::system::error_code;

// A Boost.JSON parser handler that remembers the names of every open object and stops
// at the first repeated one; with Build, it also builds the value (as json::parser does).
template <bool Build>
class StrictHandler {
 public:
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);

  // Set when parsing stopped at a repeated name: that name.
  std::optional<std::string> repeated;
  json::value_stack stack;

  bool on_document_begin(error_code&) {
    if constexpr (Build) stack.reset();
    return true;
  }
  bool on_document_end(error_code&) { return true; }
  bool on_array_begin(error_code&) { return true; }
  bool on_array_end(std::size_t n, error_code&) {
    if constexpr (Build) stack.push_array(n);
    return true;
  }
  bool on_object_begin(error_code&) {
    if (open_ == names_.size()) names_.emplace_back();
    names_[open_++].clear();
    return true;
  }
  bool on_object_end(std::size_t n, error_code&) {
    --open_;
    if constexpr (Build) stack.push_object(n);
    return true;
  }
  bool on_string_part(json::string_view s, std::size_t, error_code&) {
    if constexpr (Build) stack.push_chars(s);
    return true;
  }
  bool on_string(json::string_view s, std::size_t, error_code&) {
    if constexpr (Build) stack.push_string(s);
    return true;
  }
  bool on_key_part(json::string_view s, std::size_t, error_code&) {
    key_.append(s.data(), s.size());
    if constexpr (Build) stack.push_chars(s);
    return true;
  }
  bool on_key(json::string_view s, std::size_t, error_code& ec) {
    key_.append(s.data(), s.size());
    std::vector<std::string>& names = names_[open_ - 1];
    if (std::find(names.begin(), names.end(), key_) != names.end()) {
      repeated = std::move(key_);
      key_.clear();
      ec = json::error::syntax;
      return false;
    }
    names.push_back(key_);
    key_.clear();
    if constexpr (Build) stack.push_key(s);
    return true;
  }
  bool on_number_part(json::string_view, error_code&) { return true; }
  bool on_int64(int64_t i, json::string_view, error_code&) {
    if constexpr (Build) stack.push_int64(i);
    return true;
  }
  bool on_uint64(uint64_t u, json::string_view, error_code&) {
    if constexpr (Build) stack.push_uint64(u);
    return true;
  }
  bool on_double(double d, json::string_view, error_code&) {
    if constexpr (Build) stack.push_double(d);
    return true;
  }
  bool on_bool(bool b, error_code&) {
    if constexpr (Build) stack.push_bool(b);
    return true;
  }
  bool on_null(error_code&) {
    if constexpr (Build) stack.push_null();
    return true;
  }
  bool on_comment_part(json::string_view, error_code&) { return true; }
  bool on_comment(json::string_view, error_code&) { return true; }

 private:
  // The names of each open object, innermost last; levels are reused, not freed.
  std::vector<std::vector<std::string>> names_;
  size_t open_ = 0;
  std::string key_;  // the name being read
};

template <bool Build>
Status run(json::basic_parser<StrictHandler<Build>>& parser, std::string_view text) {
  error_code error;
  const size_t used = parser.write_some(false, text.data(), text.size(), error);
  if (auto& repeated = parser.handler().repeated) {
    return Status(Code::invalid_request, "body is not I-JSON: the member name \"" + *repeated +
                                             "\" is repeated in one object");
  }
  if (!error && used != text.size()) error = json::error::extra_data;
  if (error) return Status(Code::invalid_request, "body is not valid JSON: " + error.message());
  return {};
}

json::parse_options options_for(size_t depth_max) {
  json::parse_options options;
  options.max_depth = depth_max;
  return options;  // allow_invalid_utf8 stays false: invalid UTF-8 is an error
}

}  // namespace

Result<json::value> parse_strict_json(std::string_view text, size_t depth_max) {
  json::basic_parser<StrictHandler<true>> parser(options_for(depth_max));
  if (Status status = run(parser, text); !status.ok()) return status.error();
  return parser.handler().stack.release();
}

Status check_strict_json(std::string_view text, size_t depth_max) {
  json::basic_parser<StrictHandler<false>> parser(options_for(depth_max));
  return run(parser, text);
}

}  // namespace balanced::core
