// The engine's metrics, declared once.
#pragma once

#include <array>

#include "core/codes.h"
#include "observe/registry.h"

namespace balanced::engine {

struct EngineStats {
  explicit EngineStats(observe::Registry& registry);

  prometheus::Gauge& queue_depth;
  prometheus::Histogram& batch_operations;
  prometheus::Histogram& commit_seconds;
  prometheus::Counter& commit_retries;
  prometheus::Counter& commit_failures;
  prometheus::Counter& replays;
  prometheus::Counter& overloaded;
  // Operations by kind and outcome code (ok, insufficient_funds, ...).
  prometheus::Counter& outcome(bool is_transfer, Code code) {
    return *outcomes_[is_transfer ? 1 : 0][static_cast<size_t>(code)];
  }

 private:
  static constexpr size_t codes = static_cast<size_t>(last_code) + 1;
  std::array<std::array<prometheus::Counter*, codes>, 2> outcomes_{};
};

}  // namespace balanced::engine
