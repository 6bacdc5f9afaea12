// The Redis security flags both binaries take, each under its own prefix: balanced's
// --cache-ca-file, --cache-user, --cache-password-file and the gateway's
// --rate-limit-store-ca-file and so on (DESIGN.md section 12). What they set wins over the
// URL's own user and password.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "observe/registry.h"
#include "redis/client.h"

namespace balanced::flags {

// Adds `--<flag_prefix>-ca-file`, `-user` and `-password-file`, with environment variables
// `<env_prefix>CA_FILE` and so on.
void add_redis_security_flags(CLI::App& app, redis::SecurityOverrides& flags,
                              const std::string& flag_prefix, const std::string& env_prefix);

// Opens the client a Redis URL flag names (redis::open_client): an error when a node
// refuses its certificate or credentials; a warning logged when none can be reached yet.
// Registers `<metrics_prefix>_redis_connect_failures_total{reason}`.
Result<std::shared_ptr<redis::Client>> open_redis(const std::string& flag, const std::string& url,
                                                  const redis::SecurityOverrides& flags, int timeout_ms,
                                                  observe::Registry& registry,
                                                  const std::string& metrics_prefix);

}  // namespace balanced::flags
