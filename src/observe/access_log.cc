#include "observe/access_log.h"

#include <chrono>

#include "core/json_text.h"
#include "observe/log.h"

namespace balanced::observe {
namespace {

// RFC 3339 UTC with milliseconds, as every other log line's @timestamp.
std::string utc_now() {
  const auto now = std::chrono::system_clock::now();
  return core::format_time_ms(std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count());
}

}  // namespace

void log_access(std::string_view service, std::string_view dataset, const AccessEntry& entry) {
  std::string line = "{\"@timestamp\":\"" + utc_now() + "\",\"log.level\":\"info\",\"ecs.version\":\"" +
                     std::string(ecs_version) + "\",\"service.name\":" +
                     core::json_string(service) + ",\"event.dataset\":" + core::json_string(dataset) +
                     ",\"http.request.method\":" + core::json_string(entry.method) +
                     ",\"url.path\":" + core::json_string(entry.path) +
                     ",\"http.response.status_code\":" + std::to_string(entry.status) +
                     ",\"event.duration\":" + std::to_string(entry.duration_ns) +
                     ",\"client.ip\":" + core::json_string(entry.client_ip);
  if (!entry.user.empty()) line += ",\"user.id\":" + core::json_string(entry.user);
  line += ",\"http.request.id\":" + core::json_string(entry.request_id) + ",\"trace.id\":" +
          core::json_string(entry.trace_id) + "}\n";
  // One fwrite of the whole line: lines from several threads never interleave.
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

}  // namespace balanced::observe
