// --risk-hook URL (DESIGN.md section 11): an outside service asked about the debits a
// request would post, once per request (a batch's items in one call), before they are
// queued. Its answer, {decision: allow|review|deny, reason}, is stored with each
// transaction, so a replay never asks again; a hook that fails or is late decides by
// --risk-hook-failure.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/codes.h"
#include "core/risk.h"
#include "http/client.h"
#include "observe/registry.h"

namespace balanced::api {

// An answer's body, read at most.
inline constexpr size_t risk_hook_reply_bytes_max = 4096;
inline constexpr int64_t risk_hook_timeout_ms_default = 200;
// Requests waiting for a hook thread, at most (more: 503 overloaded), and how long one
// may wait for a thread before it is answered 503 overloaded unasked (its client, or the
// gateway's upstream timeout, would have given up).
inline constexpr size_t risk_hook_queued_max = 4096;
inline constexpr int64_t risk_hook_queue_wait_max_ms = 2000;
inline constexpr size_t risk_hook_threads_default = 32;

struct HookVerdict {
  core::RiskDecision decision = core::RiskDecision::allow;
  std::string reason;
};

class RiskHook {
 public:
  virtual ~RiskHook() = default;
  // Blocking, within the hook's deadline: its decision on `request` (the JSON of
  // core::encode_risk_hook_request), or the failure mode's.
  virtual HookVerdict decide(const std::string& request) = 0;
};

struct RiskHookOptions {
  std::string url;
  std::string ca_file;  // https: trusted besides the system's roots
  int64_t timeout_ms = risk_hook_timeout_ms_default;
  core::RiskDecision on_failure = core::RiskDecision::deny;
  size_t threads = risk_hook_threads_default;
};

// The hook over HTTP(S): one POST per decision, on a connection of its own.
class HttpRiskHook final : public RiskHook {
 public:
  static Result<std::unique_ptr<HttpRiskHook>> open(const RiskHookOptions& options, observe::Registry& registry);
  HookVerdict decide(const std::string& request) override;

 private:
  HttpRiskHook(http::ClientTarget target, const RiskHookOptions& options, observe::Registry& registry);
  // The answer's decision, or why it is not one.
  static Result<HookVerdict> read_answer(const http::ClientReply& reply);

  // Kept-alive connections, one per call under way (worker threads), reused.
  http::ClientPool connections_;
  const int64_t timeout_ms_;
  const core::RiskDecision on_failure_;
  prometheus::Family<prometheus::Counter>& calls_;
  prometheus::Counter& failures_;
  prometheus::Histogram& seconds_;
};

// The in-memory twin: one decision for every request, and how many were asked.
class FixedRiskHook final : public RiskHook {
 public:
  explicit FixedRiskHook(HookVerdict verdict) : verdict_(std::move(verdict)) {}
  HookVerdict decide(const std::string&) override {
    calls_.fetch_add(1);
    return verdict_;
  }
  size_t calls() const { return calls_.load(); }

 private:
  const HookVerdict verdict_;
  std::atomic<size_t> calls_{0};
};

}  // namespace balanced::api
