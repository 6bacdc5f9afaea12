// balance-gateway's request path: request id and trace context, client address (behind
// trusted proxies), per-address rate limit, token and authorization checks (auth/gate.h),
// per-principal rate limit, then the proxy; every answer carries X-Request-Id and the
// RateLimit headers, and is written to the access log (ECS JSON, never a token).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

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
  // Every argument must outlive the gateway; the proxy is attached once the server
  // exists (it needs the server's worker threads), before it starts.
  Gateway(GatewayOptions options, auth::Gate& gate, RateLimiter& limiter, GatewayStats& stats);
  void attach(Proxy& proxy) { proxy_ = &proxy; }

  void handle(http::Request&& request, http::Respond respond) override;
  size_t body_bytes_max(std::string_view method, std::string_view target) const override;
  void on_transport_error(http::Response& response, const http::Request& head) override;

 private:
  struct Context;
  void finish(const std::shared_ptr<Context>& context, http::Response&& response);
  std::string client_address(const http::Request& request) const;

  const GatewayOptions options_;
  auth::Gate& gate_;
  RateLimiter& limiter_;
  GatewayStats& stats_;
  Proxy* proxy_ = nullptr;
};

}  // namespace balanced::gateway
