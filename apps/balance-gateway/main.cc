// balance-gateway: the one public entry point (DESIGN.md section 8). Parses flags, wires
// the key source, the gate, the rate limiter, the upstreams and the proxy into the
// server, reloads TLS on SIGHUP and drains on SIGTERM.
#include <CLI/CLI.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "auth/gate.h"
#include "auth/key_source.h"
#include "gateway/gateway.h"
#include "gateway/proxy.h"
#include "gateway/rate_limit.h"
#include "gateway/upstream.h"
#include "http/admin.h"
#include "http/server.h"
#include "net/url.h"
#include "observe/log.h"
#include "redis/client.h"
#include "service/file_watch.h"
#include "flags/redis_flags.h"
#include "service/runtime.h"
#include "flags/token_checks.h"

using namespace balanced;
using service::fail;

namespace {

// How often the TLS certificate and key files are looked at for a change.
constexpr int64_t tls_watch_interval_ms = 1000;

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

int main(int argc, char** argv) {
  CLI::App app{"balance-gateway: the API gateway in front of balanced"};
  std::string listen = "0.0.0.0:8443";
  std::string admin_listen = "127.0.0.1:9901";
  http::ServerOptions server_options;
  server_options.threads = std::max(1u, std::thread::hardware_concurrency());
  server_options.idle_timeout_ms = 60'000;
  server_options.head_timeout_ms = 10'000;
  server_options.body_timeout_ms = 30'000;
  bool insecure_plaintext = false;
  std::vector<std::string> upstream_flags;
  flags::TokenFlags token_flags;
  std::string rate_limit = "100/s:200";
  std::string ip_rate_limit = "50/s:100";
  std::string rate_limit_store = "memory";
  int rate_limit_timeout_ms = 50;
  std::vector<std::string> trusted_proxy_flags;
  gateway::ProxyOptions proxy_options;
  int64_t drain_timeout_s = 25;
  int64_t upstream_resolve_s = 5;
  std::string log_level = "info";
  std::string access_log = "on";

  auto env = [](const char* flag) { return std::string("BALANCE_GATEWAY_") + flag; };
  app.add_option("--listen", listen, "public HOST:PORT")->envname(env("LISTEN"));
  app.add_option("--tls-cert", server_options.tls_cert_file, "PEM certificate chain (reread on SIGHUP)")
      ->envname(env("TLS_CERT"));
  app.add_option("--tls-key", server_options.tls_key_file, "PEM private key (reread on SIGHUP)")
      ->envname(env("TLS_KEY"));
  app.add_flag("--insecure-plaintext", insecure_plaintext, "allow plain HTTP on a non-loopback address")
      ->envname(env("INSECURE_PLAINTEXT"));
  app.add_option("--admin-listen", admin_listen, "HOST:PORT for /metrics, /healthz, /readyz")
      ->envname(env("ADMIN_LISTEN"));
  app.add_option("--upstream", upstream_flags,
                 "balanced replicas, http://HOST:PORT (repeat, or commas); a name is resolved again every "
                 "--upstream-resolve-s and each of its addresses is a replica")
      ->envname(env("UPSTREAM"))
      ->required();
  flags::add_token_flags(app, token_flags, env(""));
  app.add_option("--rate-limit", rate_limit, "token bucket per principal, N/s:BURST")->envname(env("RATE_LIMIT"));
  app.add_option("--ip-rate-limit", ip_rate_limit, "token bucket per client address, N/s:BURST")
      ->envname(env("IP_RATE_LIMIT"));
  app.add_option("--rate-limit-store", rate_limit_store,
                 "memory, redis[s]://[USER[:PASSWORD]@]H:P or redis[s]-cluster://H:P,... (rediss: TLS)")
      ->envname(env("RATE_LIMIT_STORE"));
  redis::SecurityOverrides rate_limit_security;
  flags::add_redis_security_flags(app, rate_limit_security, "rate-limit-store", env("RATE_LIMIT_STORE_"));
  app.add_option("--rate-limit-timeout-ms", rate_limit_timeout_ms,
                 "Redis rate limits: then the request is decided by local buckets")
      ->envname(env("RATE_LIMIT_TIMEOUT_MS"))
      ->check(CLI::Range(1, 60'000));
  app.add_option("--trusted-proxies", trusted_proxy_flags, "CIDRs whose X-Forwarded-For is believed")
      ->envname(env("TRUSTED_PROXIES"));
  app.add_option("--upstream-resolve-s", upstream_resolve_s,
                 "how often an --upstream name is resolved again (a failed or empty answer keeps the last set)")
      ->envname(env("UPSTREAM_RESOLVE_S"))
      ->check(CLI::Range(int64_t{1}, int64_t{3600}));
  app.add_option("--upstream-timeout-ms", proxy_options.timeout_ms, "then 504 upstream_timeout")
      ->envname(env("UPSTREAM_TIMEOUT_MS"))
      ->check(CLI::Range(int64_t{10}, int64_t{600'000}));
  app.add_option("--drain-timeout-s", drain_timeout_s, "SIGTERM: time in-flight requests get")
      ->envname(env("DRAIN_TIMEOUT_S"))
      ->check(CLI::Range(int64_t{0}, int64_t{3'600}));
  app.add_option("--max-connections", server_options.connections_max, "open client connections at most")
      ->envname(env("MAX_CONNECTIONS"))
      ->check(CLI::Range(size_t{1}, size_t{1'000'000}));
  app.add_option("--idle-timeout-ms", server_options.idle_timeout_ms, "a keep-alive connection idle this long is closed")
      ->envname(env("IDLE_TIMEOUT_MS"))
      ->check(CLI::Range(int64_t{100}, int64_t{3'600'000}));
  app.add_option("--head-timeout-ms", server_options.head_timeout_ms,
                 "a request head must arrive within this of its first byte (else the connection is closed)")
      ->envname(env("HEAD_TIMEOUT_MS"))
      ->check(CLI::Range(int64_t{100}, int64_t{600'000}));
  app.add_option("--threads", server_options.threads, "worker threads")
      ->envname(env("THREADS"))
      ->check(CLI::Range(size_t{1}, size_t{256}));
  app.add_option("--log-level", log_level, "debug, info, warn or error")
      ->envname(env("LOG_LEVEL"))
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  app.add_option("--access-log", access_log, "on (one ECS JSON line per request on stdout) or off")
      ->envname(env("ACCESS_LOG"))
      ->check(CLI::IsMember({"on", "off"}));
  CLI11_PARSE(app, argc, argv);

  observe::init_logging(log_level, "balance-gateway");
  if (!service::set_listen(listen, server_options)) return fail("--listen: expected HOST:PORT");
  const bool tls = !server_options.tls_cert_file.empty() || !server_options.tls_key_file.empty();
  if (!tls && !insecure_plaintext && !net::is_loopback_host(server_options.host)) {
    return fail("--listen " + listen + ": plain HTTP only on a loopback address; give --tls-cert and "
                "--tls-key, or --insecure-plaintext");
  }
  gateway::GatewayOptions options;
  options.access_log = access_log == "on";
  auto principal_rate = gateway::parse_rate_policy(rate_limit);
  auto ip_rate = gateway::parse_rate_policy(ip_rate_limit);
  if (!principal_rate) return fail("--rate-limit: expected N/s:BURST");
  if (!ip_rate) return fail("--ip-rate-limit: expected N/s:BURST");
  options.principal_rate = *principal_rate;
  options.ip_rate = *ip_rate;
  for (const std::string& text : split_commas(trusted_proxy_flags)) {
    auto cidr = gateway::parse_cidr(text);
    if (!cidr) return fail("--trusted-proxies: bad CIDR " + text);
    options.trusted_proxies.push_back(*cidr);
  }
  if (!token_flags.given()) return fail("--jwks is required: the gateway lets nothing through without token checks");
  service::block_signals();
  observe::Registry registry;

  // Keys and the gate.
  auto checks = flags::open_token_checks(token_flags, registry, "balance_gateway");
  if (!checks.ok()) return fail(checks.error().detail);

  // Rate limits.
  gateway::GatewayStats stats(registry);
  std::shared_ptr<redis::Client> redis;
  std::unique_ptr<gateway::RateLimiter> limiter;
  if (rate_limit_store == "memory") {
    limiter = std::make_unique<gateway::LocalLimiter>();
  } else {
    auto client = flags::open_redis("rate-limit-store", rate_limit_store, rate_limit_security,
                                      rate_limit_timeout_ms, registry, "balance_gateway");
    if (!client.ok()) return fail(client.error().detail);
    redis = std::move(client.value());
    limiter = std::make_unique<gateway::RedisLimiter>(*redis, &stats.rate_limits);
  }

  // Upstreams.
  auto upstreams = gateway::Upstreams::parse(split_commas(upstream_flags), &registry);
  if (!upstreams.ok()) return fail(upstreams.error().detail);
  upstreams.value()->start({}, upstream_resolve_s * 1000);

  gateway::Gateway handler(options, *checks.value().gate, *limiter, stats);
  server_options.thread_name = "gw-http";
  server_options.server_header = "balance-gateway";
  server_options.body_bytes_max = options.body_bytes_max;
  http::Server server(server_options, handler);
  gateway::Proxy proxy(server, *upstreams.value(), proxy_options, &stats.proxy);
  handler.attach(server, proxy);

  gateway::Upstreams& replicas = *upstreams.value();
  // DESIGN.md section 12: the gateway's readiness is its own (listening, keys loaded:
  // both hold once it serves), never its upstreams'. With no healthy replica it answers
  // 503 itself, fast; were it unready instead, a database outage would take every gateway
  // out of the load balancer and turn a 503 into a refused connection.
  http::AdminEndpoints admin(registry, {});
  auto& connections = registry.gauge("balance_gateway_connections", "Open client connections");
  registry.on_scrape([&connections, &server] { connections.Set(static_cast<double>(server.open_connections())); });
  service::AdminListener admin_listener(admin);
  if (auto status = admin_listener.start(admin_listen); !status.ok()) return fail(status.detail());
  if (auto status = server.start(); !status.ok()) return fail(status.detail());

  observe::log(observe::LogLevel::info, "balance-gateway serving",
               {{"listen", net::HostPort{server_options.host, server.port()}.text()},
                {"admin_listen", admin_listen},
                {"listen_tls", tls ? "on" : "off"},
                {"upstreams", std::to_string(replicas.size())},
                {"threads", std::to_string(server_options.threads)}});

  // The certificate and key are reread on SIGHUP, and when either file changes (a
  // Kubernetes Secret volume is updated in place, and nothing sends a signal).
  auto reload_tls = [&server, tls] {
    if (auto status = server.reload_tls(); !status.ok()) {
      observe::log(observe::LogLevel::error, "TLS reload failed; keeping the old certificate",
                   {{"error.message", status.detail()}});
    } else if (tls) {
      observe::log(observe::LogLevel::info, "TLS certificate reloaded");
    }
  };
  std::optional<service::FileWatch> tls_watch;
  if (tls) {
    tls_watch.emplace(std::vector<std::string>{server_options.tls_cert_file, server_options.tls_key_file},
                      tls_watch_interval_ms, "tls-watch", reload_tls);
  }
  const int signal_number = service::wait_for_stop(reload_tls);
  tls_watch.reset();
  observe::log(observe::LogLevel::info, "draining", {{"signal", std::to_string(signal_number)}});
  admin.set_draining();
  server.shutdown(drain_timeout_s * 1000);
  limiter->stop();  // its pending decisions post to the server's workers, which are gone
  proxy.close();
  admin_listener.stop();
  observe::log(observe::LogLevel::info, "stopped");
  return 0;
}
