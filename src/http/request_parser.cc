#include "http/request_parser.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>

#include "net/url.h"

namespace balanced::http {

namespace {

// Byte classes of RFC 9110 5.6.2 (token), 5.5 (field values) and RFC 9112 3.2 (targets).
enum Class : uint8_t {
  kToken = 1,       // tchar: what methods and header names are made of
  kFieldChar = 2,   // a field value's byte: VCHAR, obs-text, SP, HTAB
  kTargetChar = 4,  // a request target's byte: VCHAR and obs-text (no space, no control)
};

constexpr std::array<uint8_t, 256> kClasses = [] {
  std::array<uint8_t, 256> classes{};
  for (int c = 0x21; c <= 0xff; ++c) {
    if (c == 0x7f) continue;  // DEL is a control
    classes[c] |= kFieldChar | kTargetChar;
  }
  classes[' '] |= kFieldChar;
  classes['\t'] |= kFieldChar;
  for (int c = '0'; c <= '9'; ++c) classes[c] |= kToken;
  for (int c = 'a'; c <= 'z'; ++c) classes[c] |= kToken;
  for (int c = 'A'; c <= 'Z'; ++c) classes[c] |= kToken;
  for (const char c : std::string_view("!#$%&'*+-.^_`|~")) classes[static_cast<uint8_t>(c)] |= kToken;
  return classes;
}();

bool is(char c, Class of) { return (kClasses[static_cast<uint8_t>(c)] & of) != 0; }

// Bytes from `at` that belong to the class.
size_t span(std::string_view text, size_t at, Class of) {
  size_t end = at;
  while (end < text.size() && is(text[end], of)) ++end;
  return end - at;
}

// True if every byte of `text` is of the class `of`: field values (lowest SP, and HTAB)
// or targets (lowest '!'), bytes from 0x80 up allowed. Eight bytes at a time while no
// byte is below `lowest` or DEL (the word tests of "Bit Twiddling Hacks", exact: a word
// is flagged if and only if it holds such a byte), then byte by byte by class from the
// first flagged word.
bool all_visible(std::string_view text, uint8_t lowest, Class of) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHighs = 0x8080808080808080ULL;
  size_t at = 0;
  for (; at + 8 <= text.size(); at += 8) {
    uint64_t word;
    std::memcpy(&word, text.data() + at, sizeof word);
    const uint64_t below = (word - kOnes * lowest) & ~word & kHighs;
    const uint64_t del = word ^ (kOnes * 0x7f);
    const uint64_t is_del = (del - kOnes) & ~del & kHighs;
    if ((below | is_del) != 0) break;
  }
  return span(text, at, of) == text.size() - at;
}

bool is_blank(char c) { return c == ' ' || c == '\t'; }

std::string_view trim_blanks(std::string_view text) {
  while (!text.empty() && is_blank(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_blank(text.back())) text.remove_suffix(1);
  return text;
}

// A header line's name and value (surrounding blanks dropped), or nothing if it is not
// `token ":" OWS field-value OWS`. A line that starts with a blank is a folded
// continuation (obs-fold), refused like any other malformed line.
struct Field {
  std::string_view name;
  std::string_view value;
};
std::optional<Field> parse_field(std::string_view line) {
  const size_t name = span(line, 0, kToken);
  if (name == 0 || name == line.size() || line[name] != ':') return std::nullopt;
  const std::string_view value = line.substr(name + 1);
  if (!all_visible(value, ' ', kFieldChar)) return std::nullopt;
  return Field{line.substr(0, name), trim_blanks(value)};
}

// 1*DIGIT, as a Content-Length must be; nothing if it is not, or does not fit.
std::optional<uint64_t> parse_length(std::string_view text) {
  if (text.empty()) return std::nullopt;
  uint64_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<uint64_t>(c - '0');
    if (value > (std::numeric_limits<uint64_t>::max() - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

}  // namespace

void RequestParser::start(Request& into) {
  request_ = &into;
  state_ = State::request_line;
  error_ = ParseError::none;
  why_ = {};
  scanned_ = 0;
  head_bytes_ = 0;
  body_bytes_max_ = 0;
  remaining_ = 0;
  content_length_.reset();
  chunked_ = false;
  connection_close_ = false;
  connection_keep_alive_ = false;
  expect_continue_ = false;
  // One allocation for the usual handful of headers, instead of the vector's doublings.
  into.headers.reserve(8);
}

std::optional<size_t> RequestParser::next_line(std::string_view bytes, size_t from) {
  const size_t searched = from + scanned_;
  const void* found = searched < bytes.size()
                          ? std::memchr(bytes.data() + searched, '\n', bytes.size() - searched)
                          : nullptr;
  if (found == nullptr) {
    scanned_ = bytes.size() - from;
    return std::nullopt;
  }
  scanned_ = 0;
  return static_cast<size_t>(static_cast<const char*>(found) - bytes.data()) + 1 - from;
}

bool RequestParser::ends_in_crlf(std::string_view bytes, size_t from, size_t line_bytes) {
  if (line_bytes >= 2 && bytes[from + line_bytes - 2] == '\r') return true;
  return refuse(ParseError::malformed, "a line ends in LF without CR");
}

bool RequestParser::refuse(ParseError error, std::string_view why) {
  state_ = State::failed;
  error_ = error;
  why_ = why;
  return false;
}

RequestParser::Put RequestParser::fail(ParseError error, std::string_view why, size_t used) {
  refuse(error, why);
  return {Step::failed, used};
}

RequestParser::Put RequestParser::put(std::string_view bytes) {
  size_t at = 0;
  for (;;) {
    switch (state_) {
      case State::request_line:
      case State::header_line:
      case State::trailer_line: {
        // A line's size is checked before what it holds, so a line refused for its size is
        // refused for it whether it comes whole or in pieces.
        const bool trailer = state_ == State::trailer_line;
        const auto line_bytes = next_line(bytes, at);
        const size_t seen = line_bytes ? *line_bytes : bytes.size() - at;
        if (head_bytes_ + seen > head_bytes_max_) {
          return fail(ParseError::head_too_large,
                      trailer ? "the request trailer exceeds the bound" : "the request head exceeds the bound", at);
        }
        if (!line_bytes) return {Step::more, at};
        if (!ends_in_crlf(bytes, at, *line_bytes)) return {Step::failed, at};
        head_bytes_ += *line_bytes;
        const std::string_view line = bytes.substr(at, *line_bytes - 2);
        at += *line_bytes;
        if (state_ == State::request_line) {
          // RFC 9112 2.2: empty lines before a request line are ignored.
          if (!line.empty() && request_line(line)) state_ = State::header_line;
        } else if (trailer) {
          if (line.empty()) {
            state_ = State::done;
          } else if (!parse_field(line)) {
            refuse(ParseError::malformed, "a malformed trailer field");
          }
        } else if (line.empty()) {
          if (end_of_head()) state_ = State::head_done;
        } else {
          header_line(line);
        }
        if (state_ == State::failed) return {Step::failed, at};
        break;
      }
      case State::head_done:
        return {Step::head, at};
      case State::body_length:
      case State::chunk_data: {
        const auto take = static_cast<size_t>(std::min<uint64_t>(remaining_, bytes.size() - at));
        request_->body.append(bytes.data() + at, take);
        at += take;
        remaining_ -= take;
        if (remaining_ > 0) return {Step::more, at};
        state_ = state_ == State::body_length ? State::done : State::chunk_data_end;
        break;
      }
      case State::chunk_data_end: {
        const std::string_view rest = bytes.substr(at);
        constexpr std::string_view kNoCrlf = "a chunk's data does not end in CRLF";
        if (!rest.empty() && rest[0] != '\r') return fail(ParseError::malformed, kNoCrlf, at);
        if (rest.size() < 2) return {Step::more, at};
        if (rest[1] != '\n') return fail(ParseError::malformed, kNoCrlf, at);
        at += 2;
        state_ = State::chunk_size;
        break;
      }
      case State::chunk_size: {
        const auto line_bytes = next_line(bytes, at);
        if ((line_bytes ? *line_bytes : bytes.size() - at) > kChunkLineBytesMax) {
          return fail(ParseError::malformed, "a chunk size line exceeds 4096 bytes", at);
        }
        if (!line_bytes) return {Step::more, at};
        if (!ends_in_crlf(bytes, at, *line_bytes)) return {Step::failed, at};
        const std::string_view line = bytes.substr(at, *line_bytes - 2);
        at += *line_bytes;
        if (!chunk_size_line(line)) return {Step::failed, at};
        break;
      }
      case State::done:
        return {Step::done, at};
      case State::failed:
        return {Step::failed, at};
    }
  }
}

bool RequestParser::request_line(std::string_view line) {
  // method SP request-target SP HTTP-version, one space each (RFC 9112 3).
  const size_t method = span(line, 0, kToken);
  if (method == 0 || method == line.size() || line[method] != ' ') {
    return refuse(ParseError::malformed, "a malformed request line (method)");
  }
  const size_t target_at = method + 1;
  const size_t space = line.find(' ', target_at);
  const size_t target = space == std::string_view::npos ? 0 : space - target_at;
  if (target == 0 || !all_visible(line.substr(target_at, target), '!', kTargetChar)) {
    return refuse(ParseError::malformed, "a malformed request line (target)");
  }
  const size_t version_at = space + 1;
  const std::string_view version = line.substr(version_at);
  if (version == "HTTP/1.1") {
    request_->version = 11;
  } else if (version == "HTTP/1.0") {
    request_->version = 10;
  } else {
    return refuse(ParseError::malformed, "not HTTP/1.1 or HTTP/1.0");
  }
  request_->method.assign(line.substr(0, method));
  request_->target.assign(line.substr(target_at, target));
  return true;
}

bool RequestParser::header_line(std::string_view line) {
  const auto field = parse_field(line);
  if (!field) return refuse(ParseError::malformed, "a malformed header field");
  const auto [name, value] = *field;
  // The headers that frame the request or steer the connection, found by length first.
  switch (name.size()) {
    case 14:
      if (iequals(name, "content-length")) {
        if (content_length_) return refuse(ParseError::malformed, "more than one Content-Length");
        content_length_ = parse_length(value);
        if (!content_length_) return refuse(ParseError::malformed, "a Content-Length that is not a number");
      }
      break;
    case 17:
      if (iequals(name, "transfer-encoding")) {
        if (chunked_) return refuse(ParseError::malformed, "more than one Transfer-Encoding");
        if (!iequals(value, "chunked")) {
          return refuse(ParseError::malformed, "a Transfer-Encoding other than chunked");
        }
        chunked_ = true;
      }
      break;
    case 10:
      if (iequals(name, "connection")) {
        std::string_view rest = value;
        while (!rest.empty()) {
          const size_t comma = rest.find(',');
          const std::string_view option = trim_blanks(rest.substr(0, comma));
          if (iequals(option, "close")) connection_close_ = true;
          if (iequals(option, "keep-alive")) connection_keep_alive_ = true;
          rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        }
      }
      break;
    case 6:
      if (iequals(name, "expect") && iequals(value, "100-continue")) expect_continue_ = true;
      break;
    default:
      break;
  }
  request_->headers.emplace_back(name, value);
  return true;
}

bool RequestParser::end_of_head() {
  // RFC 9112 6.1: a request with both is an attempt at smuggling; refused, not guessed at.
  if (chunked_ && content_length_) {
    return refuse(ParseError::malformed, "both Content-Length and Transfer-Encoding");
  }
  if (chunked_ && request_->version == 10) {
    return refuse(ParseError::malformed, "a Transfer-Encoding in an HTTP/1.0 request");
  }
  return true;
}

bool RequestParser::begin_body(size_t body_bytes_max) {
  if (state_ != State::head_done) return state_ != State::failed;
  body_bytes_max_ = body_bytes_max;
  if (content_length_) {
    if (*content_length_ > body_bytes_max) {
      return refuse(ParseError::body_too_large, "the Content-Length exceeds the body bound");
    }
    remaining_ = *content_length_;
    request_->body.reserve(static_cast<size_t>(remaining_));
    state_ = remaining_ == 0 ? State::done : State::body_length;
  } else if (chunked_) {
    state_ = State::chunk_size;
  } else {
    state_ = State::done;  // RFC 9112 6.3: a request without either has no body
  }
  return true;
}

bool RequestParser::chunk_size_line(std::string_view line) {
  // chunk-size [ chunk-ext ] (RFC 9112 7.1); extensions are checked for bytes, not read.
  uint64_t size = 0;
  size_t digits = 0;
  for (; digits < line.size(); ++digits) {
    const int digit = net::hex_value(line[digits]);
    if (digit < 0) break;
    if (size > (std::numeric_limits<uint64_t>::max() >> 4)) {
      return refuse(ParseError::body_too_large, "a chunk larger than the body bound");
    }
    size = (size << 4) | static_cast<uint64_t>(digit);
  }
  if (digits == 0) return refuse(ParseError::malformed, "a chunk size that is not hexadecimal");
  std::string_view extensions = line.substr(digits);
  while (!extensions.empty() && is_blank(extensions.front())) extensions.remove_prefix(1);
  if (!extensions.empty() &&
      (extensions.front() != ';' || span(extensions, 0, kFieldChar) != extensions.size())) {
    return refuse(ParseError::malformed, "a malformed chunk extension");
  }
  if (size > body_bytes_max_ - request_->body.size()) {
    return refuse(ParseError::body_too_large, "a chunked body exceeds the body bound");
  }
  if (size == 0) {
    state_ = State::trailer_line;
    head_bytes_ = 0;  // the trailer has a bound of its own
  } else {
    remaining_ = size;
    state_ = State::chunk_data;
  }
  return true;
}

bool RequestParser::keep_alive() const {
  if (connection_close_) return false;
  return request_ != nullptr && (request_->version == 11 || connection_keep_alive_);
}

}  // namespace balanced::http
