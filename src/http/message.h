// Transport-neutral HTTP messages. Handlers see only these; they know nothing of sockets.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/inline_function.h"

namespace balanced::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

// Case-insensitive ASCII comparison, as header names are compared (RFC 9110 5.1).
bool iequals(std::string_view a, std::string_view b);

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as received: path and query, still percent-encoded
  std::string path;    // percent-decoded path, no query
  std::vector<std::pair<std::string, std::string>> query;  // decoded, in order
  bool query_valid = true;  // false when the target's query could not be decoded
  Headers headers;          // every header, in order, names as sent
  std::string body;
  unsigned version = 11;    // 10 or 11
  std::string peer_address;  // the connection's remote address (no port)
  uint16_t peer_port = 0;
  bool tls = false;      // received over TLS
  size_t worker = 0;     // index of the server worker thread that received it

  // The first header of that name, or empty.
  std::string_view header(std::string_view name) const;
  bool has_header(std::string_view name) const;
  // Removes every header of that name.
  void remove_header(std::string_view name);
  void set_header(std::string_view name, std::string value);
};

// A response's Content-Type: a string literal, held by pointer (the common case costs no
// allocation), or any other value, copied (a proxied answer's). Only a literal, or another
// array that lives as long as the program, may be given as an array.
class ContentType {
 public:
  ContentType() = default;  // none: the response has no Content-Type header
  template <size_t N>
  ContentType(const char (&literal)[N])  // NOLINT(google-explicit-constructor): from a literal
      : literal_(literal, N - 1) {}
  static ContentType copy_of(std::string_view value) {
    ContentType type;
    type.owned_ = value;
    return type;
  }
  std::string_view view() const { return is_literal() ? literal_ : owned_; }
  bool is_literal() const { return literal_.data() != nullptr; }
  bool empty() const { return view().empty(); }

 private:
  std::string_view literal_;
  std::string owned_;
};

struct Response {
  int status = 200;
  ContentType content_type = "application/json";
  std::string body;
  Headers headers;
  // The first header of that name, or empty.
  std::string_view header(std::string_view name) const;
  // Replaces every header of that name with one.
  void set_header(std::string_view name, std::string value);
};

// A body sent as it is made (Server-Sent Events), opened by Respond::stream() once its
// head is known. The body ends with end(), or when the connection closes: the client went
// away, or did not take a write within the server's body timeout (a slow reader is cut
// off, never buffered for). Only on the connection's thread, but post().
class BodyStream {
 public:
  virtual ~BodyStream() = default;
  // Sends `piece` as the body's next bytes; `written` runs on the connection's thread
  // once the connection took them, never if it closed first. The next write waits for
  // it: what a stream holds is one piece. An empty piece is written at once.
  virtual void write(std::string piece, std::function<void()> written) = 0;
  // Runs `run` on the connection's thread, from any thread; never once it closed.
  virtual void post(std::function<void()> run) = 0;
  // Ends the body once what was written is out, and closes the connection.
  virtual void end() = 0;
  // The connection closed (or the request was a HEAD): writes go nowhere.
  virtual bool closed() const = 0;
  // Runs `closed` on the connection's thread when it closes (at once if it has): what
  // the writer waits on for the next piece can be let go then.
  virtual void on_close(std::function<void()> closed) = 0;
};

// What a Respond answers through: the connection that received the request (the server
// implements it). `exchange` tells that request from the connection's later ones.
class Exchange {
 public:
  using Build = std::function<Response()>;
  // A step every answer to the request passes, on the connection's thread.
  using Decoration = InlineFunction<void(Response&), 96>;
  virtual ~Exchange() = default;
  // Sends `response`, from any thread.
  virtual void send(uint64_t exchange, Response&& response) = 0;
  // Runs `build` on the connection's thread and sends what it returns, from any thread.
  virtual void send_built(uint64_t exchange, Build build) = 0;
  // On the connection's thread, before the answer.
  virtual void decorate(uint64_t exchange, Decoration decoration) = 0;
  // Sends `head` (its body ignored) and opens its body as a stream, on the connection's
  // thread.
  virtual std::shared_ptr<BodyStream> stream(uint64_t exchange, Response&& head) = 0;
};

// Answers one request: call it (or later()) exactly once, from any thread. Copies are
// cheap (a reference to the connection) and all answer the same request.
class Respond {
 public:
  using Build = Exchange::Build;
  using Decoration = Exchange::Decoration;

  Respond() = default;
  Respond(std::shared_ptr<Exchange> to, uint64_t exchange) : to_(std::move(to)), exchange_(exchange) {}

  // Sends a finished response.
  void operator()(Response&& response) const { to_->send(exchange_, std::move(response)); }
  // Builds the response on the connection's thread: keeps the encoding off the caller's
  // thread (the engine's committer, whose time every queued request waits for).
  void later(Build build) const { to_->send_built(exchange_, std::move(build)); }
  // Passes the answer through `decoration` on the connection's thread; the decoration
  // added last runs first. Only from Handler::handle, on its thread, before answering.
  void decorate(Decoration decoration) const { to_->decorate(exchange_, std::move(decoration)); }
  // Answers with `head` and a body written later, piece by piece (chunked on HTTP/1.1,
  // up to the connection's close on 1.0), instead of calling operator(); the connection
  // closes when the body ends. Decorations pass the head. On the connection's thread.
  std::shared_ptr<BodyStream> stream(Response&& head) const {
    return to_->stream(exchange_, std::move(head));
  }

 private:
  std::shared_ptr<Exchange> to_;
  uint64_t exchange_ = 0;
};

class Handler {
 public:
  virtual ~Handler() = default;
  virtual void handle(Request&& request, Respond respond) = 0;
  // The largest body this handler takes for a request with that method and target,
  // asked once the head is read; 0 means the server's default.
  virtual size_t body_bytes_max(std::string_view /*method*/, std::string_view /*target*/) const {
    return 0;
  }
  // Called for an answer the server gives by itself (malformed request, head or body
  // too large), before it is sent; `head` holds what was parsed of the request, if
  // anything. Lets a handler add its headers (a request id) and log it.
  virtual void on_transport_error(Response& /*response*/, const Request& /*head*/) {}
};

}  // namespace balanced::http
