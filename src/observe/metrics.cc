#include "observe/metrics.h"

#include <prometheus/text_serializer.h>

#include <sstream>

namespace balanced::observe {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Histogram;

constexpr std::array<std::string_view, route_count> kRouteNames{
    "create_account", "post_transaction", "get_balance", "get_account", "get_history",
    "get_transaction", "health",          "metrics",     "other"};

constexpr std::array<std::string_view, 6> kStatusClasses{"1xx", "2xx", "3xx",
                                                         "4xx", "5xx", "other"};

Histogram::BucketBoundaries latency_buckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5};
}

}  // namespace

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      queue_depth(BuildGauge()
                      .Name("balanced_engine_queue_depth")
                      .Help("Operations waiting for the committer")
                      .Register(*registry_)
                      .Add({})),
      batch_operations(BuildHistogram()
                           .Name("balanced_engine_batch_operations")
                           .Help("Operations per committed batch")
                           .Register(*registry_)
                           .Add({}, Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256,
                                                                512, 1024, 2048, 4096})),
      commit_seconds(BuildHistogram()
                         .Name("balanced_engine_commit_seconds")
                         .Help("Time to apply and durably commit one batch")
                         .Register(*registry_)
                         .Add({}, latency_buckets())),
      commit_retries(BuildCounter()
                         .Name("balanced_engine_commit_retries_total")
                         .Help("Batches retried after a transient storage error")
                         .Register(*registry_)
                         .Add({})),
      commit_failures(BuildCounter()
                          .Name("balanced_engine_commit_failures_total")
                          .Help("Batches answered 503 after their retries ran out")
                          .Register(*registry_)
                          .Add({})),
      replays(BuildCounter()
                  .Name("balanced_engine_replays_total")
                  .Help("Transfers answered from an earlier request with the same id")
                  .Register(*registry_)
                  .Add({})),
      overloaded(BuildCounter()
                     .Name("balanced_engine_overloaded_total")
                     .Help("Operations refused because the queue was full")
                     .Register(*registry_)
                     .Add({})),
      cache_hits(BuildGauge()
                     .Name("balanced_cache_hits")
                     .Help("Balance reads answered by the cache since start")
                     .Register(*registry_)
                     .Add({})),
      cache_misses(BuildGauge()
                       .Name("balanced_cache_misses")
                       .Help("Balance reads the cache could not answer since start")
                       .Register(*registry_)
                       .Add({})),
      cache_entries(BuildGauge()
                        .Name("balanced_cache_entries")
                        .Help("Accounts held by the cache")
                        .Register(*registry_)
                        .Add({})),
      cache_errors(BuildGauge()
                       .Name("balanced_cache_errors")
                       .Help("Cache requests that failed and were served as misses, since start")
                       .Register(*registry_)
                       .Add({})),
      singleton_leader(BuildGauge()
                           .Name("balanced_singleton_leader")
                           .Help("1 while this replica holds the singleton-job lease")
                           .Register(*registry_)
                           .Add({})),
      audit_sealed(BuildCounter()
                       .Name("balanced_audit_sealed_total")
                       .Help("Audit records this replica chained into the hash chain")
                       .Register(*registry_)
                       .Add({})),
      audit_unsealed(BuildGauge()
                         .Name("balanced_audit_unsealed")
                         .Help("Audit records written but not yet chained, as last seen by the leader")
                         .Register(*registry_)
                         .Add({})),
      job_failures(BuildCounter()
                       .Name("balanced_singleton_job_failures_total")
                       .Help("Singleton job runs that failed (fenced off or storage down)")
                       .Register(*registry_)
                       .Add({})) {
  outcomes_family_ = &BuildCounter()
                          .Name("balanced_operations_total")
                          .Help("Operations the engine decided, by kind and outcome code")
                          .Register(*registry_);
  auto& requests = BuildCounter()
                       .Name("balanced_http_requests_total")
                       .Help("HTTP requests by route and status class")
                       .Register(*registry_);
  auto& seconds = BuildHistogram()
                      .Name("balanced_http_request_seconds")
                      .Help("Time from a request's last byte to its response, by route")
                      .Register(*registry_);
  for (size_t route = 0; route < route_count; ++route) {
    for (size_t status = 0; status < kStatusClasses.size(); ++status) {
      request_counters_[route][status] =
          &requests.Add({{"route", std::string(kRouteNames[route])},
                         {"status", std::string(kStatusClasses[status])}});
    }
    request_seconds_[route] =
        &seconds.Add({{"route", std::string(kRouteNames[route])}}, latency_buckets());
  }
  for (int kind = 0; kind < 2; ++kind) {
    for (int code = 0; code <= static_cast<int>(Code::forbidden); ++code) {
      outcome_counters_[kind][code] =
          &outcomes_family_->Add({{"kind", kind == 1 ? "transfer" : "create_account"},
                                  {"outcome", std::string(code_name(static_cast<Code>(code)))}});
    }
  }
}

prometheus::Counter& Metrics::outcome(bool is_transfer, Code code) {
  return *outcome_counters_[is_transfer ? 1 : 0][static_cast<size_t>(code)];
}

void Metrics::observe_request(Route route, int status, double seconds) {
  const size_t index = static_cast<size_t>(route);
  const size_t status_class = status >= 100 && status < 600 ? status / 100 - 1 : 5;
  request_counters_[index][status_class]->Increment();
  request_seconds_[index]->Observe(seconds);
}

std::string Metrics::serialize() {
  if (refresh_) refresh_();
  prometheus::TextSerializer serializer;
  std::ostringstream out;
  serializer.Serialize(out, registry_->Collect());
  return out.str();
}

}  // namespace balanced::observe
