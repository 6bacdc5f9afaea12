// Structured logs: one JSON object per line on stdout, for ELK/EFK, in Elastic Common
// Schema field names: {"@timestamp", "log.level", "ecs.version", "service.name", "message",
// ...fields}; the ecs-logging spec requires the first three on every line.
// Fields are strings; a field never holds a secret or a token.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace balanced::observe {

enum class LogLevel { debug, info, warn, error };

// The ECS version the field names follow (every line's ecs.version).
inline constexpr std::string_view ecs_version = "8.11.0";

// Sets the minimum level ("debug", "info", "warn", "error") and the service.name of every
// line; false for an unknown level.
bool init_logging(std::string_view level, std::string_view service_name = "balanced");

using LogFields = std::initializer_list<std::pair<std::string_view, std::string_view>>;
void log(LogLevel level, std::string_view message, LogFields fields = {});

// Names the calling thread (at most 15 characters are kept), for top, perf and gdb.
void name_this_thread(std::string_view name);

}  // namespace balanced::observe
