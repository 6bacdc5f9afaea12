// Structured logs: one JSON object per line on stdout, for ELK/EFK.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace balanced::observe {

enum class LogLevel { debug, info, warn, error };

// Sets the minimum level ("debug", "info", "warn", "error"); false for an unknown name.
bool init_logging(std::string_view level);

using LogFields = std::initializer_list<std::pair<std::string_view, std::string_view>>;
void log(LogLevel level, std::string_view message, LogFields fields = {});

// Names the calling thread (at most 15 characters are kept), for top, perf and gdb.
void name_this_thread(std::string_view name);

}  // namespace balanced::observe
