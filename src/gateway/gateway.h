// balance-gateway's request path: request id and trace context, client address (behind
// trusted proxies), per-address rate limit, token and authorization checks (auth/gate.h),
// per-principal rate limit, then the proxy; every answer carries X-Request-Id and the
// RateLimit headers, and is written to the access log (ECS JSON, never a token). No step
// blocks a worker: a limit decided by Redis, and the replica's answer, come back to the
// request's worker thread for the next step.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "http/bookkeeping.h"
#include "auth/gate.h"
#include "gateway/proxy.h"
#include "gateway/rate_limit.h"
#include "gateway/request_info.h"
#include "http/message.h"
#include "http/router.h"

namespace balanced::gateway {

namespace problems {
inline constexpr http::Problem rate_limited{429, "rate_limited", "Too many requests"};
inline constexpr http::Problem bad_gateway{502, "bad_gateway", "Bad gateway"};
inline constexpr http::Problem unavailable{503, "unavailable", "No healthy replica, retry shortly"};
inline constexpr http::Problem upstream_timeout{504, "upstream_timeout", "The replica did not answer in time"};
}  // namespace problems

struct GatewayOptions {
  RatePolicy principal_rate{100, 200};
  RatePolicy ip_rate{50, 100};
  std::vector<Cidr> trusted_proxies;
  bool access_log = true;
  size_t body_bytes_max = 64 * 1024;
  size_t batch_body_bytes_max = 2 * 1024 * 1024;
};

struct GatewayStats {
  GatewayStats(observe::Registry& registry);
  http::RouteStats routes;
  RateLimitStats rate_limits;
  ProxyStats proxy;
};

class Gateway final : public http::Handler {
 public:
  // Every argument must outlive the gateway; the server and proxy are attached once they
  // exist (the proxy needs the server's worker threads), before the server starts. The
  // limiter must be stopped (RateLimiter::stop) after the server, before either goes.
  Gateway(GatewayOptions options, auth::Gate& gate, RateLimiter& limiter, GatewayStats& stats);
  void attach(http::Server& server, Proxy& proxy) {
    server_ = &server;
    proxy_ = &proxy;
  }

  void handle(http::Request&& request, http::Respond respond) override;
  size_t body_bytes_max(std::string_view method, std::string_view target) const override;
  void on_transport_error(http::Response& response, const http::Request& head) override;

 private:
  struct Context;
  // The steps of a request, each on its worker's thread; a rate limit decided later (by
  // Redis) brings the request back to that thread for the next step.
  using Step = void (Gateway::*)(const std::shared_ptr<Context>&, const RateDecision&);
  void rate_limit(const std::shared_ptr<Context>& context, Step next, const std::string& key,
                  const RatePolicy& policy);
  void after_ip_limit(const std::shared_ptr<Context>& context, const RateDecision& by_ip);
  void after_principal_limit(const std::shared_ptr<Context>& context, const RateDecision& by_principal);
  void finish(const std::shared_ptr<Context>& context, http::Response&& response);
  // A streamed answer (GET /events/stream): its head now, its body as the replica sends it.
  void relay(const std::shared_ptr<Context>& context, Forwarded&& forwarded);
  std::string client_address(const http::Request& request) const;

  const GatewayOptions options_;
  auth::Gate& gate_;
  RateLimiter& limiter_;
  GatewayStats& stats_;
  const http::Bookkeeping book_;
  http::Server* server_ = nullptr;
  Proxy* proxy_ = nullptr;
};

}  // namespace balanced::gateway
