// balance-gateway's settings: every flag (and its environment variable) into one Config,
// then the checks no single flag can make and the settings derived from the flags'
// text (rate policies, trusted proxies, the replicas' URLs).
#pragma once

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "core/codes.h"
#include "flags/token_checks.h"
#include "gateway/gateway.h"
#include "gateway/proxy.h"
#include "http/server.h"
#include "redis/client.h"

namespace balanced::app {

struct Config {
  Config() {
    server.threads = std::max(1u, std::thread::hardware_concurrency());
    server.idle_timeout_ms = 60'000;
    server.head_timeout_ms = 10'000;
    server.body_timeout_ms = 30'000;
  }

  std::string listen = "0.0.0.0:8443";
  std::string admin_listen = "127.0.0.1:9901";
  http::ServerOptions server;
  bool insecure_plaintext = false;
  std::vector<std::string> upstreams;  // as given: repeated, or commas
  flags::TokenFlags token_flags;
  std::string rate_limit = "100/s:200";
  std::string ip_rate_limit = "50/s:100";
  std::string rate_limit_store = "memory";
  redis::SecurityOverrides rate_limit_security;
  int rate_limit_timeout_ms = 50;
  std::vector<std::string> trusted_proxies;  // as given
  gateway::ProxyOptions proxy;
  int64_t drain_timeout_s = 25;
  int64_t upstream_resolve_s = 5;
  std::string log_level = "info";
  std::string access_log = "on";

  // Derived by finish().
  bool tls = false;
  gateway::GatewayOptions gateway;
  std::vector<std::string> upstream_urls;
};

void add_flags(CLI::App& app, Config& config);

// After parsing: refuses what the flags allow one by one but not together (the error
// names the flag) and fills in the derived settings.
Status finish(Config& config);

}  // namespace balanced::app
