// A request's id and trace context (W3C Trace Context), as the gateway starts or passes
// them on and as both binaries log them. Pure, fuzzed (tests/fuzz/auth_fuzz.cc).
#pragma once

#include <string>
#include <string_view>

#include "http/message.h"

namespace balanced::http {

// X-Request-Id as sent when it is 1-128 of [A-Za-z0-9._-], else a new random one.
std::string request_id_of(const Request& request);
// traceparent (W3C Trace Context) as sent when valid, else a new one; sets `trace_id`.
std::string traceparent_of(const Request& request, std::string& trace_id);
// `digits` random lowercase hex digits (not for secrets).
std::string random_hex(size_t digits);

}  // namespace balanced::http
