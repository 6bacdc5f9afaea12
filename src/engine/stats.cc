#include "engine/stats.h"

namespace balanced::engine {

EngineStats::EngineStats(observe::Registry& registry)
    : queue_depth(registry.gauge("balanced_engine_queue_depth",
                                 "Operations waiting for the committer")),
      batch_operations(registry.histogram("balanced_engine_batch_operations",
                                          "Operations per committed batch",
                                          {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096})),
      commit_seconds(registry.histogram("balanced_engine_commit_seconds",
                                        "Time to apply and durably commit one batch",
                                        observe::Registry::latency_buckets())),
      commit_retries(registry.counter("balanced_engine_commit_retries_total",
                                      "Batches retried after a transient storage error")),
      commit_failures(registry.counter("balanced_engine_commit_failures_total",
                                       "Batches answered 503 after their retries ran out")),
      replays(registry.counter("balanced_engine_replays_total",
                               "Transfers answered from an earlier request with the same id")),
      commits_found_on_retry(registry.counter(
          "balanced_engine_commits_found_on_retry_total",
          "Operations a batch attempt committed though its answer was lost (found when the batch was "
          "retried), answered as first attempts")),
      overloaded(registry.counter("balanced_engine_overloaded_total",
                                  "Operations refused because the queue was full")),
      deadline_expired(registry.counter(
          "balanced_engine_deadline_expired_total",
          "Operations answered 503 because storage did not answer within --storage-deadline-ms")),
      risk_decisions_(registry.counters("balanced_risk_decisions_total",
                                        "Risk decisions recorded with new transactions, by rule and decision")) {
  auto& stages = registry.histograms(
      "balanced_engine_stage_seconds",
      "Time spent in each stage of the write path (per batch, or per request for respond)");
  // From 10 us: most stages take microseconds, and a stall shows as a far bucket.
  const prometheus::Histogram::BucketBoundaries stage_buckets = {
      0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
      0.005,   0.01,     0.025,   0.05,   0.1,     0.25,   1,     10};
  constexpr std::array<std::string_view, stage_count> names = {
      "queue_wait", "backpressure", "decide", "durable", "publish", "complete", "respond"};
  for (size_t i = 0; i < stage_count; ++i) {
    stages_[i] = &stages.Add({{"stage", std::string(names[i])}}, stage_buckets);
  }
  auto& family = registry.counters("balanced_operations_total",
                                   "Operations the engine decided, by kind and outcome code");
  for (size_t kind = 0; kind < kinds; ++kind) {
    const std::string name = kind == 0   ? "create_account"
                             : kind == 1 ? "patch_account"
                                         : std::string(core::type_name(static_cast<core::TransactionType>(kind - 2)));
    for (size_t code = 0; code < codes; ++code) {
      outcomes_[kind][code] =
          &family.Add({{"kind", name},
                       {"outcome", std::string(code_name(static_cast<Code>(code)))}});
    }
  }
}

size_t EngineStats::operation_kind(const core::Operation& operation) {
  if (std::holds_alternative<core::CreateAccount>(operation)) return 0;
  if (std::holds_alternative<core::PatchAccount>(operation)) return 1;
  core::TransactionType type = core::TransactionType::refund;
  if (const auto* transfer = std::get_if<core::Transfer>(&operation)) type = transfer->type;
  if (const auto* settle = std::get_if<core::SettleHold>(&operation)) type = settle->type;
  return 2 + static_cast<size_t>(type);
}

}  // namespace balanced::engine
