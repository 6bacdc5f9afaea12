// All metrics of balanced, declared once (Envoy's stats-struct habit). The hot paths hold
// plain references; nothing is looked up by label at request time.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <functional>
#include <memory>
#include <string>

#include "core/codes.h"

namespace balanced::observe {

// The routes the HTTP API knows, for per-route metrics.
enum class Route {
  create_account,
  post_transaction,
  get_balance,
  get_account,
  get_history,
  get_transaction,
  health,
  metrics,
  other,
};
inline constexpr size_t route_count = 9;

class Metrics {
  // Declared first: every metric reference below is initialized from it.
  std::shared_ptr<prometheus::Registry> registry_;

 public:
  Metrics();

  // Engine.
  prometheus::Gauge& queue_depth;
  prometheus::Histogram& batch_operations;
  prometheus::Histogram& commit_seconds;
  prometheus::Counter& commit_retries;
  prometheus::Counter& commit_failures;
  // Operations by outcome code (ok, insufficient_funds, ...); replays counted apart.
  prometheus::Counter& outcome(bool is_transfer, Code code);
  prometheus::Counter& replays;
  prometheus::Counter& overloaded;

  // HTTP.
  void observe_request(Route route, int status, double seconds);

  // Read at scrape time (cache statistics, for example).
  void on_scrape(std::function<void()> refresh) { refresh_ = std::move(refresh); }
  prometheus::Gauge& cache_hits;
  prometheus::Gauge& cache_misses;
  prometheus::Gauge& cache_entries;
  prometheus::Gauge& cache_errors;

  // Singleton jobs (audit sealing on MySQL).
  prometheus::Gauge& singleton_leader;    // 1 while this replica holds the lease
  prometheus::Counter& audit_sealed;      // records this replica chained
  prometheus::Gauge& audit_unsealed;      // records waiting for the chain (leader's view)
  prometheus::Counter& job_failures;      // job runs that failed (fenced off, storage down)

  // The Prometheus text exposition format.
  std::string serialize();

 private:
  prometheus::Family<prometheus::Counter>* outcomes_family_;
  std::array<std::array<prometheus::Counter*, 32>, 2> outcome_counters_{};
  std::array<std::array<prometheus::Counter*, 6>, route_count> request_counters_{};
  std::array<prometheus::Histogram*, route_count> request_seconds_{};
  std::function<void()> refresh_;
};

}  // namespace balanced::observe
