// The metrics registry of one process. Each component declares its metrics once, in a
// stats struct of its own built from this registry (Envoy's habit): the hot paths hold
// plain references and nothing is looked up by label at request time.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace balanced::observe {

using Labels = std::map<std::string, std::string>;

class Registry {
 public:
  Registry() : registry_(std::make_shared<prometheus::Registry>()) {}
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Counters end in _total, durations are histograms in seconds (Prometheus naming).
  prometheus::Family<prometheus::Counter>& counters(const std::string& name,
                                                    const std::string& help);
  prometheus::Family<prometheus::Gauge>& gauges(const std::string& name, const std::string& help);
  prometheus::Family<prometheus::Histogram>& histograms(const std::string& name,
                                                        const std::string& help);
  prometheus::Counter& counter(const std::string& name, const std::string& help,
                               const Labels& labels = {});
  prometheus::Gauge& gauge(const std::string& name, const std::string& help,
                           const Labels& labels = {});
  prometheus::Histogram& histogram(const std::string& name, const std::string& help,
                                   const prometheus::Histogram::BucketBoundaries& buckets,
                                   const Labels& labels = {});

  // Seconds from 100 µs to 10 s: request, commit and upstream durations.
  static prometheus::Histogram::BucketBoundaries latency_buckets();

  // Runs before every scrape (statistics kept elsewhere, copied in). Register while
  // wiring, before serving.
  void on_scrape(std::function<void()> refresh);
  // The Prometheus text exposition format (0.0.4). Thread-safe.
  std::string serialize();

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::mutex scrape_mutex_;  // one scrape at a time runs the refreshers
  std::vector<std::function<void()>> refreshers_;
};

// Raises a counter to `total`, a count kept elsewhere (never lowers it).
void advance_counter(prometheus::Counter& counter, double total);

}  // namespace balanced::observe
