#include "config.h"

#include <sstream>

#include "flags/redis_flags.h"
#include "gateway/rate_limit.h"
#include "gateway/request_info.h"
#include "net/url.h"
#include "service/runtime.h"

namespace balanced::app {
namespace {

std::vector<std::string> split_commas(const std::vector<std::string>& values) {
  std::vector<std::string> out;
  for (const std::string& value : values) {
    std::stringstream parts(value);
    std::string part;
    while (std::getline(parts, part, ',')) {
      if (!part.empty()) out.push_back(part);
    }
  }
  return out;
}

}  // namespace

void add_flags(CLI::App& app, Config& config) {
  auto env = [](const char* flag) { return std::string("BALANCE_GATEWAY_") + flag; };
  app.add_option("--listen", config.listen, "public HOST:PORT")->envname(env("LISTEN"));
  app.add_option("--tls-cert", config.server.tls_cert_file, "PEM certificate chain (reread on SIGHUP)")
      ->envname(env("TLS_CERT"));
  app.add_option("--tls-key", config.server.tls_key_file, "PEM private key (reread on SIGHUP)")
      ->envname(env("TLS_KEY"));
  app.add_flag("--insecure-plaintext", config.insecure_plaintext, "allow plain HTTP on a non-loopback address")
      ->envname(env("INSECURE_PLAINTEXT"));
  app.add_option("--admin-listen", config.admin_listen, "HOST:PORT for /metrics, /healthz, /readyz")
      ->envname(env("ADMIN_LISTEN"));
  app.add_option("--upstream", config.upstreams,
                 "balanced replicas, http://HOST:PORT (repeat, or commas); a name is resolved again every "
                 "--upstream-resolve-s and each of its addresses is a replica")
      ->envname(env("UPSTREAM"))
      ->required();
  flags::add_token_flags(app, config.token_flags, env(""));
  app.add_option("--rate-limit", config.rate_limit, "token bucket per principal, N/s:BURST")->envname(env("RATE_LIMIT"));
  app.add_option("--ip-rate-limit", config.ip_rate_limit, "token bucket per client address, N/s:BURST")
      ->envname(env("IP_RATE_LIMIT"));
  app.add_option("--rate-limit-store", config.rate_limit_store,
                 "memory, redis[s]://[USER[:PASSWORD]@]H:P or redis[s]-cluster://H:P,... (rediss: TLS)")
      ->envname(env("RATE_LIMIT_STORE"));
  flags::add_redis_security_flags(app, config.rate_limit_security, "rate-limit-store", env("RATE_LIMIT_STORE_"));
  app.add_option("--rate-limit-timeout-ms", config.rate_limit_timeout_ms,
                 "Redis rate limits: then the request is decided by local buckets")
      ->envname(env("RATE_LIMIT_TIMEOUT_MS"))
      ->check(CLI::Range(1, 60'000));
  app.add_option("--trusted-proxies", config.trusted_proxies, "CIDRs whose X-Forwarded-For is believed")
      ->envname(env("TRUSTED_PROXIES"));
  app.add_option("--upstream-resolve-s", config.upstream_resolve_s,
                 "how often an --upstream name is resolved again (a failed or empty answer keeps the last set)")
      ->envname(env("UPSTREAM_RESOLVE_S"))
      ->check(CLI::Range(int64_t{1}, int64_t{3600}));
  app.add_option("--upstream-timeout-ms", config.proxy.timeout_ms, "then 504 upstream_timeout")
      ->envname(env("UPSTREAM_TIMEOUT_MS"))
      ->check(CLI::Range(int64_t{10}, int64_t{600'000}));
  app.add_option("--upstream-stream-idle-ms", config.proxy.stream_idle_ms,
                 "GET /events/stream: a replica's stream silent this long (two missed heartbeats) is closed")
      ->envname(env("UPSTREAM_STREAM_IDLE_MS"))
      ->check(CLI::Range(int64_t{100}, int64_t{3'600'000}));
  app.add_option("--drain-timeout-s", config.drain_timeout_s, "SIGTERM: time in-flight requests get")
      ->envname(env("DRAIN_TIMEOUT_S"))
      ->check(CLI::Range(int64_t{0}, int64_t{3'600}));
  app.add_option("--max-connections", config.server.connections_max, "open client connections at most")
      ->envname(env("MAX_CONNECTIONS"))
      ->check(CLI::Range(size_t{1}, size_t{1'000'000}));
  app.add_option("--idle-timeout-ms", config.server.idle_timeout_ms, "a keep-alive connection idle this long is closed")
      ->envname(env("IDLE_TIMEOUT_MS"))
      ->check(CLI::Range(int64_t{100}, int64_t{3'600'000}));
  app.add_option("--head-timeout-ms", config.server.head_timeout_ms,
                 "a request head must arrive within this of its first byte (else the connection is closed)")
      ->envname(env("HEAD_TIMEOUT_MS"))
      ->check(CLI::Range(int64_t{100}, int64_t{600'000}));
  app.add_option("--threads", config.server.threads, "worker threads")
      ->envname(env("THREADS"))
      ->check(CLI::Range(size_t{1}, size_t{256}));
  app.add_option("--log-level", config.log_level, "debug, info, warn or error")
      ->envname(env("LOG_LEVEL"))
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  app.add_option("--access-log", config.access_log, "on (one ECS JSON line per request on stdout) or off")
      ->envname(env("ACCESS_LOG"))
      ->check(CLI::IsMember({"on", "off"}));
}

Status finish(Config& config) {
  const auto refuse = [](std::string detail) { return Status(Code::invalid_request, std::move(detail)); };
  if (!service::set_listen(config.listen, config.server)) return refuse("--listen: expected HOST:PORT");
  config.tls = !config.server.tls_cert_file.empty() || !config.server.tls_key_file.empty();
  if (!config.tls && !config.insecure_plaintext && !net::is_loopback_host(config.server.host)) {
    return refuse("--listen " + config.listen +
                  ": plain HTTP only on a loopback address; give --tls-cert and --tls-key, or "
                  "--insecure-plaintext");
  }
  config.gateway.access_log = config.access_log == "on";
  auto principal_rate = gateway::parse_rate_policy(config.rate_limit);
  auto ip_rate = gateway::parse_rate_policy(config.ip_rate_limit);
  if (!principal_rate) return refuse("--rate-limit: expected N/s:BURST");
  if (!ip_rate) return refuse("--ip-rate-limit: expected N/s:BURST");
  config.gateway.principal_rate = *principal_rate;
  config.gateway.ip_rate = *ip_rate;
  for (const std::string& text : split_commas(config.trusted_proxies)) {
    auto cidr = gateway::parse_cidr(text);
    if (!cidr) return refuse("--trusted-proxies: bad CIDR " + text);
    config.gateway.trusted_proxies.push_back(*cidr);
  }
  if (!config.token_flags.given()) {
    return refuse("--jwks is required: the gateway lets nothing through without token checks");
  }
  config.upstream_urls = split_commas(config.upstreams);
  config.server.thread_name = "gw-http";
  config.server.server_header = "balance-gateway";
  config.server.body_bytes_max = config.gateway.body_bytes_max;
  return {};
}

}  // namespace balanced::app
