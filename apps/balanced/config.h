// balanced's settings: every flag (and its environment variable) into one Config, then
// the checks no single flag can make and the settings derived from several.
#pragma once

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdint>
#include <string>
#include <thread>

#include "cache/open.h"
#include "core/codes.h"
#include "core/types.h"
#include "api/api.h"
#include "jobs/amqp_sink.h"
#include "jobs/webhook_sink.h"
#include "engine/engine.h"
#include "flags/token_checks.h"
#include "http/server.h"
#include "redis/client.h"
#include "storage/open.h"

namespace balanced::app {

struct Config {
  std::string listen = "127.0.0.1:8080";
  std::string admin_listen;  // empty: /metrics, /healthz, /readyz on the API listener
  bool trust_network = false;
  flags::TokenFlags token_flags;
  storage::StoreSettings store{.url = "sqlite:./data/balanced.db"};
  cache::CacheSettings cache;
  redis::SecurityOverrides cache_security;
  std::string default_currency = "USD";
  size_t threads = std::max(1u, std::thread::hardware_concurrency());
  engine::EngineOptions engine{.storage_deadline_ms = 5000};
  http::ServerOptions server;
  std::string synchronous = "full";
  std::string log_level = "info";
  std::string access_log = "off";
  int64_t drain_grace_ms = 5000;
  int64_t drain_delay_ms = 0;
  int64_t read_timeout_ms = 30000;
  int64_t singleton_interval_ms = 1000;
  int64_t lease_ttl_ms = 10'000;
  int64_t hold_expiry_s = core::hold_expiry_s_default;
  size_t hold_expiry_batch_max = 1000;
  bool unique_references = false;
  // Risk rules (DESIGN.md section 11): a JSON file, reread when it changes; empty: none.
  std::string risk_rules;
  // --risk-hook (DESIGN.md section 11): url empty for none; --risk-hook-failure.
  api::RiskHookOptions risk_hook;
  std::string risk_hook_failure = "deny";
  size_t events_waits_max = api::events_waits_max_default;
  size_t events_streams_max = api::events_streams_max_default;
  int64_t events_heartbeat_ms = api::events_heartbeat_ms_default;
  double events_retention_h = 168;
  // The change feed's relays (jobs/event_relay.h): run by the lease holder with Redis, by
  // the one process on SQLite, and on MySQL without Redis only where --events-relay.
  bool events_relay = false;
  jobs::WebhookOptions webhook;
  jobs::AmqpOptions amqp;
};

void add_flags(CLI::App& app, Config& config);

// After parsing: refuses what the flags allow one by one but not together (the error
// names the flag), and fills in the settings that follow (server threads and timeouts,
// SQLite readers, the MySQL readers' timeout from the storage deadline).
Status finish(Config& config);

}  // namespace balanced::app
