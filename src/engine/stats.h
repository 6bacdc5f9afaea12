// The engine's metrics, declared once.
#pragma once

#include <array>

#include "core/codes.h"
#include "core/types.h"
#include "observe/registry.h"

namespace balanced::engine {

// Where a write's time goes, stage by stage (balanced_engine_stage_seconds{stage}). Per
// batch: queue_wait (how long the batch's oldest operation waited in the queue),
// backpressure (the store waiting for room), decide (loading, the core's decisions,
// encoding and writing the rows), durable (the durable commit: fsync, or MySQL's COMMIT
// round trip), publish (the new balances to the cache), complete (handing every outcome
// back). Per request: respond (from the outcome handed back to its response built on the
// connection's thread, the hop between threads).
enum class Stage { queue_wait, backpressure, decide, durable, publish, complete, respond };
inline constexpr size_t stage_count = 7;

struct EngineStats {
  explicit EngineStats(observe::Registry& registry);

  prometheus::Gauge& queue_depth;
  prometheus::Histogram& batch_operations;
  prometheus::Histogram& commit_seconds;
  prometheus::Counter& commit_retries;
  prometheus::Counter& commit_failures;
  prometheus::Counter& replays;
  prometheus::Counter& commits_found_on_retry;
  prometheus::Counter& overloaded;
  prometheus::Counter& deadline_expired;
  // Operations by kind (operation_kind(): create_account, patch_account, or the type of
  // the transaction it asks for) and outcome code (ok, insufficient_funds, ...).
  static constexpr size_t kinds = 2 + static_cast<size_t>(core::last_transaction_type) + 1;
  static size_t operation_kind(const core::Operation& operation);
  prometheus::Counter& outcome(size_t kind, Code code) {
    return *outcomes_[kind < kinds ? kind : 0][static_cast<size_t>(code)];
  }
  prometheus::Histogram& stage(Stage stage) { return *stages_[static_cast<size_t>(stage)]; }
  // A risk decision recorded with a new row (DESIGN.md section 11), by rule (the hook's
  // is "$hook") and decision.
  void risk_decision(const core::Transaction& row) {
    risk_decisions_.Add({{"rule", row.risk_rule}, {"decision", row.risk_decision}}).Increment();
  }

 private:
  static constexpr size_t codes = static_cast<size_t>(last_code) + 1;
  std::array<std::array<prometheus::Counter*, codes>, kinds> outcomes_{};
  std::array<prometheus::Histogram*, stage_count> stages_{};
  prometheus::Family<prometheus::Counter>& risk_decisions_;
};

}  // namespace balanced::engine
