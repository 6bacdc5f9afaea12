// Transport-neutral HTTP messages. The API layer sees only these.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace balanced::http {

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // percent-decoded path, no query
  std::vector<std::pair<std::string, std::string>> query;  // decoded, in order
  std::string body;
  // The headers the API reads.
  std::string content_type;
  std::string idempotency_key;
  std::string operator_name;  // X-Operator, recorded in the audit log
  std::string request_id;     // X-Request-Id
  bool query_valid = true;    // false when the target's query could not be decoded
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
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
};

}  // namespace balanced::http
