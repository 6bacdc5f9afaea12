#include "service.h"

#include "flags/redis_flags.h"
#include "net/url.h"
#include "observe/log.h"

namespace balanced::app {
namespace {

// How often the TLS certificate and key files are looked at for a change.
constexpr int64_t tls_watch_interval_ms = 1000;

}  // namespace

Result<std::unique_ptr<Service>> Service::start(Config config) {
  std::unique_ptr<Service> service(new Service(std::move(config)));
  Service& self = *service;
  auto checks = flags::open_token_checks(self.config_.token_flags, self.registry_, "balance_gateway");
  if (!checks.ok()) return checks.error();
  self.checks_.emplace(std::move(checks.value()));
  self.stats_.emplace(self.registry_);
  if (auto s = self.open_rate_limiter(); !s.ok()) return s.error();
  auto upstreams = gateway::Upstreams::parse(self.config_.upstream_urls, &self.registry_);
  if (!upstreams.ok()) return upstreams.error();
  self.upstreams_ = std::move(upstreams.value());
  self.upstreams_->start({}, self.config_.upstream_resolve_s * 1000);
  if (auto s = self.serve(); !s.ok()) return s.error();
  return service;
}

Status Service::open_rate_limiter() {
  if (config_.rate_limit_store == "memory") {
    limiter_ = std::make_unique<gateway::LocalLimiter>();
    return {};
  }
  auto client = flags::open_redis("rate-limit-store", config_.rate_limit_store, config_.rate_limit_security,
                                  config_.rate_limit_timeout_ms, registry_, "balance_gateway");
  if (!client.ok()) return Status(client.error());
  redis_ = std::move(client.value());
  limiter_ = std::make_unique<gateway::RedisLimiter>(*redis_, &stats_->rate_limits);
  return {};
}

Status Service::serve() {
  handler_.emplace(config_.gateway, *checks_->gate, *limiter_, *stats_);
  server_.emplace(config_.server, *handler_);
  proxy_.emplace(*server_, *upstreams_, config_.proxy, &stats_->proxy);
  handler_->attach(*server_, *proxy_);
  // DESIGN.md section 12: the gateway's readiness is its own (listening, keys loaded:
  // both hold once it serves), never its upstreams'. With no healthy replica it answers
  // 503 itself, fast; were it unready instead, a database outage would take every gateway
  // out of the load balancer and turn a 503 into a refused connection.
  admin_.emplace(registry_, http::AdminEndpoints::Readiness{});
  auto& connections = registry_.gauge("balance_gateway_connections", "Open client connections");
  registry_.on_scrape([&connections, this] { connections.Set(static_cast<double>(server_->open_connections())); });
  admin_listener_.emplace(*admin_);
  if (auto status = admin_listener_->start(config_.admin_listen); !status.ok()) return status;
  if (auto status = server_->start(); !status.ok()) return status;
  observe::log(observe::LogLevel::info, "balance-gateway serving",
               {{"listen", net::HostPort{config_.server.host, server_->port()}.text()},
                {"admin_listen", config_.admin_listen},
                {"listen_tls", config_.tls ? "on" : "off"},
                {"upstreams", std::to_string(upstreams_->size())},
                {"threads", std::to_string(config_.server.threads)}});
  // The certificate and key are reread on SIGHUP, and when either file changes (a
  // Kubernetes Secret volume is updated in place, and nothing sends a signal).
  if (config_.tls) {
    tls_watch_.emplace(std::vector<std::string>{config_.server.tls_cert_file, config_.server.tls_key_file},
                       tls_watch_interval_ms, "tls-watch", [this] { reload_tls(); });
  }
  return {};
}

void Service::reload_tls() {
  if (auto status = server_->reload_tls(); !status.ok()) {
    observe::log(observe::LogLevel::error, "TLS reload failed; keeping the old certificate",
                 {{"error.message", status.detail()}});
  } else if (config_.tls) {
    observe::log(observe::LogLevel::info, "TLS certificate reloaded");
  }
}

void Service::drain(int signal_number) {
  tls_watch_.reset();
  observe::log(observe::LogLevel::info, "draining", {{"signal", std::to_string(signal_number)}});
  admin_->set_draining();
  server_->shutdown(config_.drain_timeout_s * 1000);
  limiter_->stop();  // its pending decisions post to the server's workers, which are gone
  proxy_->close();
  admin_listener_->stop();
  observe::log(observe::LogLevel::info, "stopped");
}

Service::~Service() = default;

}  // namespace balanced::app
