// balanced wired: the store and cache the settings name, the engine between them, the
// singleton job, storage health, the admin endpoints, the API (behind token checks when
// it has its own) and the HTTP server. Members are declared in wiring order, so they are
// destroyed in the reverse.
#pragma once

#include <memory>
#include <optional>

#include "api/api.h"
#include "auth/guarded_handler.h"
#include "cache/open.h"
#include "config.h"
#include "engine/clock.h"
#include "engine/engine.h"
#include "engine/stats.h"
#include "flags/token_checks.h"
#include "http/admin.h"
#include "http/server.h"
#include "jobs/event_relay.h"
#include "jobs/event_retention.h"
#include "jobs/hold_expiry.h"
#include "jobs/singleton.h"
#include "observe/registry.h"
#include "service/runtime.h"
#include "storage/health.h"
#include "storage/open.h"

namespace balanced::app {

class Service {
 public:
  // Opens, wires and starts serving. Fails (the detail says why, for exit 1) on what a
  // restart would not fix: a bad setting, refused credentials or certificate, an older
  // schema. A database that is merely down is served around (503, /readyz).
  static Result<std::unique_ptr<Service>> start(Config config);
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;
  ~Service();

  // On SIGTERM: readiness off at once, still serving for drain_delay_ms, then the
  // listener closes, the engine commits what it holds, in-flight requests get
  // drain_grace_ms.
  void drain(int signal_number);

 private:
  explicit Service(Config config) : config_(std::move(config)) {}
  Status open_store();
  Status open_cache();
  void start_singleton_job();
  // The change feed's relays, on the replica that runs them (config.h: events_relay).
  Status start_relays();
  Status serve();

  Config config_;
  observe::Registry registry_;
  storage::OpenedStore store_;
  cache::OpenedCache cache_;
  std::optional<engine::EngineStats> engine_stats_;
  engine::SystemClock clock_;
  std::optional<engine::Engine> engine_;
  std::unique_ptr<jobs::Lease> lease_;
  std::optional<jobs::HoldExpiry> hold_expiry_;
  std::optional<jobs::EventRetention> event_retention_;
  jobs::JobList singleton_jobs_;
  std::optional<jobs::SingletonStats> singleton_stats_;
  std::unique_ptr<jobs::SingletonRunner> singleton_;
  std::vector<std::unique_ptr<jobs::EventRelay>> relays_;
  std::optional<storage::StorageHealth> health_;
  std::optional<http::AdminEndpoints> admin_;
  std::optional<service::AdminListener> admin_listener_;
  std::unique_ptr<api::RiskRulesFile> risk_rules_;
  std::unique_ptr<api::RiskHook> risk_hook_;
  std::optional<api::Api> api_;
  std::optional<flags::TokenChecks> token_checks_;
  std::optional<auth::GuardedHandler> guarded_;
  std::optional<http::Server> server_;
};

}  // namespace balanced::app
