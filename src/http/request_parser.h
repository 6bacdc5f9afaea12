// Reads HTTP/1.1 requests (RFC 9112) from bytes that arrive in pieces. Pure: no sockets,
// no Asio, no Beast; the server's session feeds it what it has read.
//
// Strict where leniency lets two readers of the same bytes disagree (a proxy and the
// server behind it): lines end in CRLF only; no folded header lines; no space before a
// header's colon; one Content-Length of digits only; Transfer-Encoding, if sent, is
// `chunked` alone, never next to a Content-Length, never in HTTP/1.0. Every part of a
// request that is kept whole before it is taken has a bound: the head (request line and
// headers together), a chunk's size line, a chunked body's trailer, the body.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "http/message.h"

namespace balanced::http {

// Why a request was refused, which says the answer: 400, 431, 413.
enum class ParseError : uint8_t { none, malformed, head_too_large, body_too_large };

class RequestParser {
 public:
  // What put() reached.
  enum class Step : uint8_t {
    more,    // give more bytes (those not taken, and what comes next)
    head,    // the head is whole, read into the request: call begin_body() next
    done,    // the request is whole; bytes not taken belong to the next request
    failed,  // refused: error() and why() say how
  };
  struct Put {
    Step step;
    size_t used;  // bytes taken from the front of what was given
  };

  // A chunk's size line, extensions and CRLF included, longer than this is refused.
  static constexpr size_t kChunkLineBytesMax = 4096;

  // `head_bytes_max` bounds the head (request line, headers, the empty line, and any empty
  // lines before the request line) and, separately, a chunked body's trailer.
  explicit RequestParser(size_t head_bytes_max) : head_bytes_max_(head_bytes_max) {}

  // Starts reading a request into `into` (its method, target, version, headers, body);
  // `into` must outlive the reading. Fields put() does not set are left as they are.
  void start(Request& into);

  // Takes what it can of `bytes`: the bytes not yet taken from earlier calls, followed by
  // any new ones (a partial line is left untaken and read again, whole, next time).
  Put put(std::string_view bytes);

  // After Step::head: the body is read with at most `body_bytes_max` bytes. False (and
  // ParseError::body_too_large) if the Content-Length already says more.
  bool begin_body(size_t body_bytes_max);

  ParseError error() const { return error_; }
  std::string_view why() const { return why_; }  // a static text, for the problem's detail

  // Known once the head is read.
  bool keep_alive() const;
  bool expects_continue() const { return expect_continue_; }
  bool body_done() const { return state_ == State::done; }

 private:
  enum class State : uint8_t {
    request_line,  // and the empty lines that may come before it
    header_line,
    head_done,     // waiting for begin_body()
    body_length,
    chunk_size,
    chunk_data,
    chunk_data_end,  // the CRLF after a chunk's data
    trailer_line,
    done,
    failed,
  };

  // Finds the next whole line in `bytes` from `from`: its bytes through the LF, or nothing
  // when the line is not whole yet.
  std::optional<size_t> next_line(std::string_view bytes, size_t from);
  // False (and the request refused) unless the line found ends in CRLF.
  bool ends_in_crlf(std::string_view bytes, size_t from, size_t line_bytes);
  bool request_line(std::string_view line);
  bool header_line(std::string_view line);
  bool end_of_head();
  bool chunk_size_line(std::string_view line);
  Put fail(ParseError error, std::string_view why, size_t used);
  bool refuse(ParseError error, std::string_view why);

  const size_t head_bytes_max_;
  Request* request_ = nullptr;
  State state_ = State::request_line;
  ParseError error_ = ParseError::none;
  std::string_view why_;
  size_t scanned_ = 0;     // of the untaken partial line: bytes already searched for LF
  size_t head_bytes_ = 0;  // taken so far for the head, or the trailer
  size_t body_bytes_max_ = 0;
  uint64_t remaining_ = 0;  // of the body (by length) or of the current chunk
  std::optional<uint64_t> content_length_;
  bool chunked_ = false;
  bool connection_close_ = false;
  bool connection_keep_alive_ = false;
  bool expect_continue_ = false;
};

}  // namespace balanced::http
