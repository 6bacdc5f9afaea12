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

// Call exactly once, from any thread.
using Respond = std::function<void(Response&&)>;

class Handler {
 public:
  virtual ~Handler() = default;
  virtual void handle(Request&& request, Respond respond) = 0;
};

}  // namespace balanced::http
