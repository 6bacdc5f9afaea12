// Transport-neutral HTTP messages. Handlers see only these; they know nothing of sockets.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  Headers headers;
  // The first header of that name, or empty.
  std::string_view header(std::string_view name) const;
  // Replaces every header of that name with one.
  void set_header(std::string_view name, std::string value);
};

// Answers one request: call it (or later()) exactly once, from any thread.
class Respond {
 public:
  using Build = std::function<Response()>;
  // Runs a Build on the connection's own thread and sends what it returns.
  using Post = std::function<void(Build)>;

  Respond() = default;
  explicit Respond(Post post) : post_(std::move(post)) {}

  // Sends a finished response.
  void operator()(Response&& response) const {
    post_([response = std::move(response)]() mutable { return std::move(response); });
  }
  // Builds the response on the connection's thread: keeps the encoding off the caller's
  // thread (the engine's committer, whose time every queued request waits for).
  void later(Build build) const { post_(std::move(build)); }
  // A Respond that passes each response through `decorate` (on the connection's thread).
  Respond decorated(std::function<void(Response&)> decorate) const {
    return Respond([post = post_, decorate = std::move(decorate)](Build build) {
      post([build = std::move(build), decorate]() {
        Response response = build();
        decorate(response);
        return response;
      });
    });
  }

 private:
  Post post_;
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
