#include "api/risk_hook.h"

#include <chrono>

#include <boost/json.hpp>

#include "core/json_strict.h"
#include "observe/log.h"

namespace balanced::api {

namespace json = boost::json;

Result<std::unique_ptr<HttpRiskHook>> HttpRiskHook::open(const RiskHookOptions& options, observe::Registry& registry) {
  auto target = http::parse_client_target(options.url, "--risk-hook", options.ca_file);
  if (!target.ok()) return target.error();
  return std::unique_ptr<HttpRiskHook>(new HttpRiskHook(std::move(target.value()), options, registry));
}

HttpRiskHook::HttpRiskHook(http::ClientTarget target, const RiskHookOptions& options, observe::Registry& registry)
    : connections_(std::move(target)),
      timeout_ms_(options.timeout_ms),
      on_failure_(options.on_failure),
      calls_(registry.counters("balanced_risk_hook_calls_total",
                               "Calls of the --risk-hook, by its decision (failed: no answer in time, or not one)")),
      failures_(calls_.Add({{"result", "failed"}})),
      seconds_(registry.histogram("balanced_risk_hook_seconds", "Time the --risk-hook took to answer, or to fail",
                                  observe::Registry::latency_buckets())) {}

Result<HookVerdict> HttpRiskHook::read_answer(const http::ClientReply& reply) {
  if (reply.status < 200 || reply.status > 299) {
    return Error{Code::unavailable, "it answered " + std::to_string(reply.status)};
  }
  auto parsed = core::parse_strict_json(reply.body);
  if (!parsed.ok() || !parsed.value().is_object()) {
    return Error{Code::unavailable, "its answer is not a JSON object {decision, reason}"};
  }
  const json::object& answer = parsed.value().get_object();
  const json::value* decision = answer.if_contains("decision");
  const auto known = decision != nullptr && decision->is_string() ? core::risk_decision_from_name(decision->get_string())
                                                                  : std::nullopt;
  if (!known) return Error{Code::unavailable, "its decision is not allow, review or deny"};
  HookVerdict verdict{.decision = *known};
  if (const json::value* reason = answer.if_contains("reason"); reason != nullptr && reason->is_string()) {
    // At most reason_bytes_max, cut before a UTF-8 sequence, never inside one.
    std::string_view text = reason->get_string();
    if (text.size() > core::reason_bytes_max) {
      size_t end = core::reason_bytes_max;
      while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
      text = text.substr(0, end);
    }
    verdict.reason = std::string(text);
  }
  return verdict;
}

HookVerdict HttpRiskHook::decide(const std::string& request) {
  const auto started = std::chrono::steady_clock::now();
  http::ClientRequest post{.method = "POST", .headers = {{"Content-Type", "application/json"}}, .body = request};
  auto reply = connections_.call(post, timeout_ms_, risk_hook_reply_bytes_max);
  Result<HookVerdict> verdict = reply.ok() ? read_answer(reply.value()) : Result<HookVerdict>(reply.error());
  seconds_.Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  if (verdict.ok()) {
    calls_.Add({{"result", std::string(core::risk_decision_name(verdict.value().decision))}}).Increment();
    return std::move(verdict.value());
  }
  failures_.Increment();
  observe::log(observe::LogLevel::warn, "the risk hook failed: --risk-hook-failure decides",
               {{"url.full", connections_.target().url}, {"error", verdict.error().detail},
                {"decision", std::string(core::risk_decision_name(on_failure_))}});
  return HookVerdict{.decision = on_failure_,
                     .reason = "the risk hook failed (" + verdict.error().detail + "); --risk-hook-failure " +
                               std::string(core::risk_decision_name(on_failure_))};
}

}  // namespace balanced::api
