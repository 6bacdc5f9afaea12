// balance-gateway wired: token checks, the rate limiter (local or Redis), the replicas
// (found by DNS), the gateway handler and its proxy, the HTTP server and the admin
// listener; TLS reloaded when its files change. Members are declared in wiring order,
// so they are destroyed in the reverse.
#pragma once

#include <memory>
#include <optional>

#include "config.h"
#include "flags/token_checks.h"
#include "gateway/gateway.h"
#include "gateway/proxy.h"
#include "gateway/rate_limit.h"
#include "gateway/upstream.h"
#include "http/admin.h"
#include "http/server.h"
#include "observe/registry.h"
#include "redis/client.h"
#include "service/file_watch.h"
#include "service/runtime.h"

namespace balanced::app {

class Service {
 public:
  // Opens, wires and starts serving; fails (for exit 1) on a setting, key source,
  // Redis or listener that will not work.
  static Result<std::unique_ptr<Service>> start(Config config);
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;
  ~Service();

  // SIGHUP, or a changed certificate or key file: rereads both, keeping the old pair
  // when the new one does not load.
  void reload_tls();
  // On SIGTERM: readiness off, in-flight requests get drain_timeout_s.
  void drain(int signal_number);

 private:
  explicit Service(Config config) : config_(std::move(config)) {}
  Status open_rate_limiter();
  Status serve();

  Config config_;
  observe::Registry registry_;
  std::optional<flags::TokenChecks> checks_;
  std::optional<gateway::GatewayStats> stats_;
  std::shared_ptr<redis::Client> redis_;
  std::unique_ptr<gateway::RateLimiter> limiter_;
  std::unique_ptr<gateway::Upstreams> upstreams_;
  std::optional<gateway::Gateway> handler_;
  std::optional<http::Server> server_;
  std::optional<gateway::Proxy> proxy_;
  std::optional<http::AdminEndpoints> admin_;
  std::optional<service::AdminListener> admin_listener_;
  std::optional<service::FileWatch> tls_watch_;
};

}  // namespace balanced::app
