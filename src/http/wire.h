// What the server writes on the wire for a Response: its head (status line, headers,
// framing), encoded by hand in one buffer. Pure; the server sends the head and the body
// in one gathered write.
#pragma once

#include <string>
#include <string_view>

#include "http/message.h"

namespace balanced::http {

// A header a handler may not set: framing and connection management are the server's.
bool is_framing_header(std::string_view name);
// RFC 9110 5.1 (a token) and 5.5 (no CR, LF or NUL in a value).
bool is_valid_header_name(std::string_view name);
bool is_valid_header_value(std::string_view value);

// Appends to `out` the head of `response` for a request of HTTP `version` (10 or 11):
// the status line, Server, Content-Type, the handler's headers (framing ones and any that
// are not valid on the wire are left out), Content-Length, and Connection where the
// version's default does not already say what `keep_alive` says. A status outside
// 100..999 is sent as 500. `streamed`: the body follows in pieces, so no Content-Length:
// chunked on HTTP/1.1, delimited by the connection's close on 1.0.
void encode_response_head(const Response& response, unsigned version, bool keep_alive,
                          std::string_view server, std::string& out, bool streamed = false);

}  // namespace balanced::http
