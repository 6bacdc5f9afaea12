// problem+json (RFC 9457) responses: the one place where a Code becomes an HTTP status.
#pragma once

#include <string_view>

#include "core/codes.h"
#include "http/message.h"

namespace balanced::http {

int http_status(Code code);
// {type, title, status, detail, code}; 503 and 429 carry Retry-After.
Response problem_response(Code code, std::string_view detail);

}  // namespace balanced::http
