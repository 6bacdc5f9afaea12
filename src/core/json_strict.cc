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

// The names of the open objects, kept across parses on each thread so that a parse
// allocates nothing for them once warm: every name's bytes in one string, (offset,
// length) per name, and where each open object's names begin.
struct NameScratch {
  std::string text;
  std::vector<std::pair<uint32_t, uint32_t>> names;
  std::vector<size_t> object_starts;
  void clear() {
    text.clear();
    names.clear();
    object_starts.clear();
  }
};

NameScratch& name_scratch() {
  thread_local NameScratch scratch;
  scratch.clear();
  return scratch;
}

// A Boost.JSON parser handler that remembers the names of every open object and stops
// at the first repeated one; with Build, it also builds the value (as json::parser does).
template <bool Build>
class StrictHandler {
 public:
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);

  StrictHandler() : scratch_(name_scratch()) {}

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
    scratch_.object_starts.push_back(scratch_.names.size());
    return true;
  }
  bool on_object_end(std::size_t n, error_code&) {
    const size_t first = scratch_.object_starts.back();
    scratch_.object_starts.pop_back();
    if (first < scratch_.names.size()) scratch_.text.resize(scratch_.names[first].first);
    scratch_.names.resize(first);
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
    scratch_.text.append(s.data(), s.size());  // the name being read, after the others
    if constexpr (Build) stack.push_chars(s);
    return true;
  }
  bool on_key(json::string_view s, std::size_t, error_code& ec) {
    scratch_.text.append(s.data(), s.size());
    const size_t begin = scratch_.names.empty() ? 0 : scratch_.names.back().first + scratch_.names.back().second;
    const std::string_view name(scratch_.text.data() + begin, scratch_.text.size() - begin);
    for (size_t i = scratch_.object_starts.back(); i < scratch_.names.size(); ++i) {
      const auto [offset, length] = scratch_.names[i];
      if (std::string_view(scratch_.text.data() + offset, length) == name) {
        repeated = std::string(name);
        ec = json::error::syntax;
        return false;
      }
    }
    scratch_.names.emplace_back(static_cast<uint32_t>(begin), static_cast<uint32_t>(name.size()));
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
  NameScratch& scratch_;
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
