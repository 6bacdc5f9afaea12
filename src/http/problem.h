// problem+json (RFC 9457) responses. A Problem is a status, a stable machine code and a
// title; each component declares its own (the ledger's in api/problems.h, the
// gateway's in gateway/problems.h) and the transport's few below.
#pragma once

#include <string_view>

#include "http/message.h"

namespace balanced::http {

struct Problem {
  int status = 500;
  std::string_view code;   // stable, machine-readable: "invalid_request"
  std::string_view title;  // for people
};

// The problems the HTTP layer itself answers with, before any handler runs.
namespace problems {
inline constexpr Problem invalid_request{400, "invalid_request", "Invalid request"};
inline constexpr Problem not_found{404, "not_found", "Not found"};
inline constexpr Problem method_not_allowed{405, "method_not_allowed", "Method not allowed"};
inline constexpr Problem payload_too_large{413, "payload_too_large", "Request body too large"};
inline constexpr Problem headers_too_large{431, "headers_too_large", "Request headers too large"};
inline constexpr Problem unavailable{503, "unavailable", "Unavailable, retry shortly"};
}  // namespace problems

// {type, title, status, detail, code}; a 503 or 429 carries Retry-After: 1 (a caller
// that knows better replaces it).
Response problem_response(const Problem& problem, std::string_view detail);

// 405 with the Allow header.
Response method_not_allowed(std::string_view allow);

}  // namespace balanced::http
