#include "observe/log.h"

#include <pthread.h>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "core/json_text.h"

namespace balanced::observe {
namespace {

std::string service = "\"balanced\"";  // set once by init_logging, before any thread logs

std::shared_ptr<spdlog::logger> make_logger() {
  auto logger = spdlog::stdout_logger_mt("balanced");
  // The message part (%v) is the rest of the JSON object, already escaped.
  logger->set_pattern(R"({"@timestamp":"%Y-%m-%dT%H:%M:%S.%eZ","log.level":"%l","ecs.version":")" +
                          std::string(ecs_version) + R"(",%v})",
                      spdlog::pattern_time_type::utc);
  logger->flush_on(spdlog::level::info);
  return logger;
}

spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> instance = make_logger();
  return *instance;
}

}  // namespace

bool init_logging(std::string_view level, std::string_view service_name) {
  service = core::json_string(service_name);
  spdlog::level::level_enum parsed;
  if (level == "debug") {
    parsed = spdlog::level::debug;
  } else if (level == "info") {
    parsed = spdlog::level::info;
  } else if (level == "warn") {
    parsed = spdlog::level::warn;
  } else if (level == "error") {
    parsed = spdlog::level::err;
  } else {
    return false;
  }
  logger().set_level(parsed);
  return true;
}

void log(LogLevel level, std::string_view message, LogFields fields) {
  const auto spd_level = level == LogLevel::debug  ? spdlog::level::debug
                         : level == LogLevel::info ? spdlog::level::info
                         : level == LogLevel::warn ? spdlog::level::warn
                                                   : spdlog::level::err;
  if (!logger().should_log(spd_level)) return;
  std::string line = "\"service.name\":" + service + ",\"message\":" + core::json_string(message);
  for (const auto& [name, value] : fields) {
    line += ',';
    line += core::json_string(name);
    line += ':';
    line += core::json_string(value);
  }
  logger().log(spd_level, "{}", line);
}

void name_this_thread(std::string_view name) {
  const std::string text(name.substr(0, 15));
  pthread_setname_np(pthread_self(), text.c_str());
}

}  // namespace balanced::observe
