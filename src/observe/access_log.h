// Access logs: one ECS JSON line per request on stdout, next to the other log lines
// (observe/log.h), written by the gateway (always, unless --access-log off) and by
// balanced (with --access-log on). Never a token or a body.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace balanced::observe {

struct AccessEntry {
  std::string_view method;  // "-" when the request head could not be read
  std::string_view path;    // no query string
  int status = 0;
  int64_t duration_ns = 0;
  std::string_view client_ip;
  std::string_view user;  // empty: no user.id field
  std::string_view request_id;
  std::string_view trace_id;
};

// Writes `entry` as one line with "service.name": `service` and "event.dataset": `dataset`
// (e.g. "balance_gateway.access").
void log_access(std::string_view service, std::string_view dataset, const AccessEntry& entry);

}  // namespace balanced::observe
