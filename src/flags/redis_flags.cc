#include "flags/redis_flags.h"

#include "observe/log.h"

namespace balanced::flags {

void add_redis_security_flags(CLI::App& app, redis::SecurityOverrides& flags,
                              const std::string& flag_prefix, const std::string& env_prefix) {
  app.add_option("--" + flag_prefix + "-ca-file", flags.ca_file,
                 "PEM file of the CAs a rediss:// server's certificate must chain to (default: "
                 "the system's trust store)")
      ->envname(env_prefix + "CA_FILE");
  app.add_option("--" + flag_prefix + "-user", flags.user, "Redis ACL user (AUTH user password)")
      ->envname(env_prefix + "USER");
  app.add_option("--" + flag_prefix + "-password-file", flags.password_file,
                 "file holding the Redis password; read again for every new connection, so a "
                 "rotated token needs no restart")
      ->envname(env_prefix + "PASSWORD_FILE");
}

Result<std::shared_ptr<redis::Client>> open_redis(const std::string& flag, const std::string& url,
                                                  const redis::SecurityOverrides& flags, int timeout_ms,
                                                  observe::Registry& registry,
                                                  const std::string& metrics_prefix) {
  std::string unreachable;
  auto client = redis::open_client(url, flags, timeout_ms, &unreachable);
  if (!client.ok()) return Error{client.error().code, "--" + flag + ": " + client.error().detail};
  if (!unreachable.empty()) {
    observe::log(observe::LogLevel::warn, "redis not reachable yet; serving without it until it is",
                 {{"flag", "--" + flag}, {"error.message", unreachable}});
  }
  auto& family = registry.counters(metrics_prefix + "_redis_connect_failures_total",
                                   "Redis connections that could not be made, by reason: network "
                                   "(an outage), auth (credentials refused), tls (certificate or "
                                   "handshake refused)");
  auto& network = family.Add({{"reason", "network"}});
  auto& auth = family.Add({{"reason", "auth"}});
  auto& tls = family.Add({{"reason", "tls"}});
  registry.on_scrape([redis = client.value(), &network, &auth, &tls] {
    const redis::ClientCounters counters = redis->counters();
    observe::advance_counter(network, static_cast<double>(counters.network_failures));
    observe::advance_counter(auth, static_cast<double>(counters.auth_failures));
    observe::advance_counter(tls, static_cast<double>(counters.tls_failures));
  });
  return client;
}

}  // namespace balanced::flags
