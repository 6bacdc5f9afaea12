#include "gateway/gateway.h"

#include <chrono>

#include "contract/routes.h"
#include "core/json_strict.h"
#include "http/tracing.h"

namespace balanced::gateway {
namespace {

constexpr std::string_view access_dataset = "balance_gateway.access";

}  // namespace

GatewayStats::GatewayStats(observe::Registry& registry)
    : routes(registry, "balance_gateway_http", contract::api_router()),
      rate_limits(registry, "balance_gateway"),
      proxy(registry, "balance_gateway") {}

struct Gateway::Context {
  http::Request request;
  http::Respond respond;
  http::RequestRecord record;
  std::string client_ip;
  std::string traceparent;
  auth::Admission admission;
  std::vector<std::pair<std::string, std::string>> rate_headers;
};

Gateway::Gateway(GatewayOptions options, auth::Gate& gate, RateLimiter& limiter, GatewayStats& stats)
    : options_(std::move(options)),
      gate_(gate),
      limiter_(limiter),
      stats_(stats),
      book_(stats_.routes, {.service = "balance-gateway",
                            .dataset = access_dataset,
                            .access_log = options_.access_log,
                            .assign_request_id = true}) {}

size_t Gateway::body_bytes_max(std::string_view method, std::string_view target) const {
  const std::string_view path = target.substr(0, target.find('?'));
  if (method == "POST" && path == "/accounts/transactions/batch") return options_.batch_body_bytes_max;
  return options_.body_bytes_max;
}

std::string Gateway::client_address(const http::Request& request) const {
  return gateway::client_address(request.peer_address, request.header("X-Forwarded-For"), options_.trusted_proxies);
}

void Gateway::handle(http::Request&& request, http::Respond respond) {
  auto context = std::make_shared<Context>();
  context->respond = std::move(respond);
  // The log names the trace the gateway forwards, and the client it believes.
  std::string trace_id;
  context->traceparent = http::traceparent_of(request, trace_id);
  context->record = book_.open(request, -1, {}, trace_id);
  context->client_ip = client_address(request);
  if (context->record.access) context->record.access->client_ip = context->client_ip;
  context->request = std::move(request);
  rate_limit(context, &Gateway::after_ip_limit, "ip:" + context->client_ip, options_.ip_rate);
}

void Gateway::rate_limit(const std::shared_ptr<Context>& context, Step next, const std::string& key,
                         const RatePolicy& policy) {
  auto later = [this, context, next](const RateDecision& decision) {
    // On a redis-io thread: the rest of the request runs on its own worker.
    server_->post(context->request.worker, [this, context, next, decision] { (this->*next)(context, decision); });
  };
  if (auto decision = limiter_.check(key, policy, std::move(later))) (this->*next)(context, *decision);
}

void Gateway::after_ip_limit(const std::shared_ptr<Context>& context, const RateDecision& by_ip) {
  (by_ip.allowed ? stats_.rate_limits.allowed_ip : stats_.rate_limits.limited_ip).Increment();
  if (!by_ip.allowed) {
    http::Response response = http::problem_response(problems::rate_limited, "too many requests from this address");
    add_rate_headers("ip", options_.ip_rate, by_ip, response.headers);
    response.set_header("Retry-After", std::to_string(std::max<int64_t>(1, (by_ip.retry_after_ms + 999) / 1000)));
    return finish(context, std::move(response));
  }

  http::Request& request = context->request;
  const http::Router::Match match = contract::api_router().match(request.method, request.path);
  context->record.route = match.route;
  if (match.route < 0 && !match.allow.empty()) {
    return finish(context, http::method_not_allowed(match.allow));
  }
  // Only the API is public: the replicas' probes and metrics, and unknown paths, are 404
  // here whoever asks (the gateway's own are on its admin listener).
  const auto route = static_cast<contract::Route>(match.route);
  if (match.route < 0 || route == contract::Route::health || route == contract::Route::ready ||
      route == contract::Route::metrics) {
    return finish(context, http::problem_response(http::problems::not_found, "no route for " + request.path));
  }
  context->admission = gate_.admit(request, match.route, match);
  if (context->admission.principal && context->record.access) {
    context->record.access->user = context->admission.principal->subject;
  }
  if (context->admission.deny) return finish(context, std::move(*context->admission.deny));
  // A body balanced would refuse as not I-JSON never leaves the gateway either: what the
  // gate authorized and what balanced applies are read from the same text the same way.
  if (!request.body.empty() && !context->admission.body_checked) {
    if (Status json = core::check_strict_json(request.body); !json.ok()) {
      return finish(context, http::problem_response(http::problems::invalid_request, json.detail()));
    }
  }
  const std::string subject = context->admission.principal ? context->admission.principal->subject : "";
  rate_limit(context, &Gateway::after_principal_limit, "sub:" + subject, options_.principal_rate);
}

void Gateway::after_principal_limit(const std::shared_ptr<Context>& context, const RateDecision& by_principal) {
  (by_principal.allowed ? stats_.rate_limits.allowed_principal : stats_.rate_limits.limited_principal).Increment();
  add_rate_headers("principal", options_.principal_rate, by_principal, context->rate_headers);
  if (!by_principal.allowed) {
    http::Response response = http::problem_response(problems::rate_limited, "too many requests for this principal");
    response.set_header("Retry-After",
                        std::to_string(std::max<int64_t>(1, (by_principal.retry_after_ms + 999) / 1000)));
    return finish(context, std::move(response));
  }

  // What balanced learns of the caller comes from here only.
  http::Request& request = context->request;
  std::string forwarded_for(request.header("X-Forwarded-For"));
  if (!forwarded_for.empty()) forwarded_for += ", ";
  forwarded_for += request.peer_address;
  request.set_header("X-Forwarded-For", std::move(forwarded_for));
  request.set_header("X-Forwarded-Proto", request.tls ? "https" : "http");
  request.set_header("X-Request-Id", context->record.request_id);
  request.set_header("traceparent", context->traceparent);

  const size_t worker = request.worker;
  const int64_t timeout_ms = context->admission.upstream_timeout_ms;
  proxy_->forward(worker, std::move(request), context->admission.idempotent, [this, context](Forwarded&& forwarded) {
    switch (forwarded.result) {
      case Forwarded::Result::answered:
        if (context->admission.check_answer) {
          if (auto deny = gate_.check_answer(*context->admission.principal, forwarded.response)) {
            return finish(context, std::move(*deny));
          }
        }
        if (forwarded.body) return relay(context, std::move(forwarded));
        return finish(context, std::move(forwarded.response));
      case Forwarded::Result::no_replica:
        return finish(context, http::problem_response(problems::unavailable, "no healthy replica"));
      case Forwarded::Result::failed:
        return finish(context, http::problem_response(problems::bad_gateway, "the replica's connection failed"));
      case Forwarded::Result::timed_out:
        return finish(context, http::problem_response(problems::upstream_timeout,
                                                      "no answer from the replica in time"));
    }
  }, timeout_ms, context->admission.stream);
}

namespace {

// Passes a streamed body on, piece by piece: the next upstream read waits for the client
// to take the last piece, so a slow client holds one piece here (and is cut off by the
// server's body timeout), never a growing buffer.
void pass_on(const std::shared_ptr<UpstreamBody>& from, const std::shared_ptr<http::BodyStream>& to) {
  from->read([from, to](std::optional<std::string> piece) {
    if (to->closed()) return;  // the client left: dropping `from` closes the replica's side
    if (!piece) return to->end();
    to->write(std::move(*piece), [from, to] { pass_on(from, to); });
  });
}

}  // namespace

void Gateway::relay(const std::shared_ptr<Context>& context, Forwarded&& forwarded) {
  http::Response& head = forwarded.response;
  for (auto& header : context->rate_headers) head.headers.push_back(std::move(header));
  book_.close(context->record, head);  // logged and counted at its head: a stream has no end to wait for
  auto to = context->respond.stream(std::move(head));
  // The client left: the replica's side closes now, not at its next heartbeat.
  to->on_close([from = std::weak_ptr<UpstreamBody>(forwarded.body)] {
    if (auto body = from.lock()) body->close();
  });
  pass_on(forwarded.body, to);
}

void Gateway::finish(const std::shared_ptr<Context>& context, http::Response&& response) {
  for (auto& header : context->rate_headers) response.headers.push_back(std::move(header));
  book_.close(context->record, response);
  context->respond(std::move(response));
}

void Gateway::on_transport_error(http::Response& response, const http::Request& head) {
  book_.close_transport_error(head, response);
}

}  // namespace balanced::gateway
