#include "service.h"

#include <unistd.h>

#include <chrono>
#include <random>
#include <thread>

#include "cache/stats.h"
#include "flags/redis_flags.h"
#include "net/url.h"
#include "observe/log.h"

namespace balanced::app {
namespace {

// Unique per process: names this replica as a lease holder.
std::string lease_owner() {
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  std::random_device random;
  return std::string(host) + ":" + std::to_string(::getpid()) + ":" + std::to_string(random());
}

}  // namespace

Result<std::unique_ptr<Service>> Service::start(Config config) {
  std::unique_ptr<Service> service(new Service(std::move(config)));
  if (auto s = service->open_store(); !s.ok()) return s.error();
  if (auto s = service->open_cache(); !s.ok()) return s.error();
  Service& self = *service;
  self.engine_stats_.emplace(self.registry_);
  self.engine_.emplace(*self.store_.store, *self.cache_.cache, self.clock_, &*self.engine_stats_,
                       self.config_.engine);
  self.start_singleton_job();
  if (auto s = self.start_relays(); !s.ok()) return s.error();
  if (auto s = self.serve(); !s.ok()) return s.error();
  return service;
}

Status Service::open_store() {
  auto opened = storage::open_store(config_.store, &registry_);
  if (!opened.ok()) return Status(opened.error().code, "cannot open the database: " + opened.error().detail);
  store_ = std::move(opened.value());
  if (!store_.shared) return {};
  // A database that is down may come back (the store reconnects, /readyz says when);
  // a schema older than this build will not, nor will refused credentials, database
  // name or certificate (Code::internal), so refuse to serve on them.
  const Status ping = store_.store->ping();
  if (!ping.ok() && (ping.code() == Code::internal ||
                     ping.detail().find("balancectl migrate") != std::string::npos)) {
    return ping;
  }
  if (!ping.ok()) {
    observe::log(observe::LogLevel::warn, "database not reachable yet", {{"error.message", ping.detail()}});
  }
  return {};
}

Status Service::open_cache() {
  std::shared_ptr<redis::Client> redis;
  if (cache::uses_redis(config_.cache)) {
    auto client = flags::open_redis("cache", config_.cache.url, config_.cache_security,
                                    config_.cache.redis_timeout_ms, registry_, "balanced");
    if (!client.ok()) return Status(client.error());
    redis = std::move(client.value());
  }
  auto opened = cache::open_cache(config_.cache, std::move(redis));
  if (!opened.ok()) return Status(opened.error());
  cache_ = std::move(opened.value());
  cache::register_cache_metrics(registry_, *cache_.cache);
  return {};
}

// The singleton jobs (hold expiry, event retention; on MySQL audit sealing too) run on one replica at a
// time: the holder of a Redis lease when there is a Redis, else every replica in turn
// (the chain's row lock serializes the sealing; the committer expires a hold once).
void Service::start_singleton_job() {
  hold_expiry_.emplace(*engine_, clock_, registry_,
                       jobs::HoldExpiryOptions{.batch_max = config_.hold_expiry_batch_max});
  singleton_jobs_.add(*hold_expiry_);
  std::vector<std::string> relays;
  if (!config_.webhook.url.empty()) relays.emplace_back("webhook");
  if (!config_.amqp.url.empty()) relays.emplace_back("amqp");
  event_retention_.emplace(*store_.store, clock_, registry_,
                           jobs::EventRetentionOptions{
                               .retention_ms = static_cast<int64_t>(config_.events_retention_h * 3'600'000.0),
                               .relays = std::move(relays)});
  singleton_jobs_.add(*event_retention_);
  if (store_.singleton_job) singleton_jobs_.add(*store_.singleton_job);
  if (cache_.redis && store_.shared) {
    lease_ = std::make_unique<jobs::RedisLease>(
        *cache_.redis, jobs::RedisLeaseOptions{.owner = lease_owner(), .ttl_ms = config_.lease_ttl_ms});
  } else {
    lease_ = std::make_unique<jobs::EveryoneLeads>();
  }
  singleton_stats_.emplace(registry_);
  singleton_ = std::make_unique<jobs::SingletonRunner>(*lease_, singleton_jobs_, &*singleton_stats_,
                                                       config_.singleton_interval_ms);
}

Status Service::start_relays() {
  std::vector<std::unique_ptr<jobs::EventSink>> sinks;
  if (!config_.webhook.url.empty()) {
    auto webhook = jobs::WebhookSink::open(config_.webhook);
    if (!webhook.ok()) return Status(webhook.error());
    sinks.push_back(std::move(webhook.value()));
  }
  if (!config_.amqp.url.empty()) {
    auto amqp = jobs::AmqpSink::open(config_.amqp);
    if (!amqp.ok()) return Status(amqp.error());
    sinks.push_back(std::move(amqp.value()));
  }
  if (sinks.empty()) return {};
  // With a Redis lease its holder relays; without, the one SQLite process, or on MySQL
  // the replica told to: two would deliver everything twice.
  const bool leased = cache_.redis && store_.shared;
  if (!leased && store_.shared && !config_.events_relay) {
    observe::log(observe::LogLevel::info, "the relays run on the replica started with --events-relay");
    return {};
  }
  for (auto& sink : sinks) {
    relays_.push_back(std::make_unique<jobs::EventRelay>(*store_.store, *lease_, std::move(sink), registry_,
                                                         jobs::EventRelayOptions{}));
  }
  return {};
}

Status Service::serve() {
  // /readyz and balanced_storage_up: the last ping's verdict, never a wait on the store.
  health_.emplace(*store_.store, &registry_, storage::HealthOptions{});
  admin_.emplace(registry_, [this] { return health_->status(); });
  admin_listener_.emplace(*admin_);
  if (!config_.admin_listen.empty()) {
    if (auto status = admin_listener_->start(config_.admin_listen); !status.ok()) return status;
  }
  if (!config_.risk_rules.empty()) {
    auto rules = api::RiskRulesFile::open(config_.risk_rules, config_.hold_expiry_s, registry_);
    if (!rules.ok()) return Status(rules.error());
    risk_rules_ = std::move(rules.value());
  }
  if (!config_.risk_hook.url.empty()) {
    api::RiskHookOptions hook = config_.risk_hook;
    hook.on_failure = config_.risk_hook_failure == "allow" ? core::RiskDecision::allow : core::RiskDecision::deny;
    auto opened = api::HttpRiskHook::open(hook, registry_);
    if (!opened.ok()) return Status(opened.error());
    risk_hook_ = std::move(opened.value());
  }
  api_.emplace(*engine_, registry_, *admin_,
               api::ApiOptions{.default_currency = config_.default_currency,
                               .metrics_on_api_port = config_.admin_listen.empty(),
                               .access_log = config_.access_log == "on",
                               .hold_expiry_s = config_.hold_expiry_s,
                               .unique_references = config_.unique_references,
                               .events_waits_max = config_.events_waits_max,
                               .events_streams_max = config_.events_streams_max,
                               .events_heartbeat_ms = config_.events_heartbeat_ms,
                               .risk_rules = risk_rules_.get(),
                               .risk_hook = risk_hook_.get(),
                               .risk_hook_threads = config_.risk_hook.threads});
  // DESIGN.md section 9: with token checks of its own, the API sits behind the gate.
  http::Handler* handler = &*api_;
  if (config_.token_flags.given()) {
    auto checks = flags::open_token_checks(config_.token_flags, registry_, "balanced");
    if (!checks.ok()) return Status(checks.error());
    token_checks_.emplace(std::move(checks.value()));
    guarded_.emplace(*api_, *token_checks_->gate);
    handler = &*guarded_;
  }
  server_.emplace(config_.server, *handler);
  if (auto status = server_->start(); !status.ok()) return status;
  observe::log(observe::LogLevel::info, "balanced serving",
               {{"listen", net::HostPort{config_.server.host, server_->port()}.text()},
                {"admin_listen", config_.admin_listen.empty() ? "(api listener)" : config_.admin_listen},
                {"db", storage::mysql::redact_url(config_.store.url)},
                {"cache", config_.cache.url},
                {"committers", std::to_string(store_.store->apply_concurrency())},
                {"threads", std::to_string(config_.threads)},
                {"token_checks", config_.token_flags.given() ? "on" : "off"}});
  return {};
}

void Service::drain(int signal_number) {
  observe::log(observe::LogLevel::info, "draining",
               {{"signal", std::to_string(signal_number)}, {"drain_delay_ms", std::to_string(config_.drain_delay_ms)}});
  admin_->set_draining();
  // Readiness is off; the endpoint's removal takes a while to reach every kube-proxy and
  // the gateways' health checks. Until then new connections still come, and are served.
  std::this_thread::sleep_for(std::chrono::milliseconds(config_.drain_delay_ms));
  server_->stop_accepting();
  if (api_) api_->stop_hooks();  // what waits for the risk hook reaches the engine first
  engine_->drain();
  if (api_) api_->stop_waits();  // long-polls answered while the server can still send
  for (auto& relay : relays_) relay->stop();  // before the lease goes
  if (singleton_) singleton_->stop();
  server_->shutdown(config_.drain_grace_ms);
  cache_.cache->stop();  // answers reads still waiting on Redis before the server goes
  admin_listener_->stop();
  observe::log(observe::LogLevel::info, "stopped");
}

Service::~Service() = default;

}  // namespace balanced::app
