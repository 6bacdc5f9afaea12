#include "observe/registry.h"

#include <prometheus/text_serializer.h>

#include <sstream>

namespace balanced::observe {

prometheus::Family<prometheus::Counter>& Registry::counters(const std::string& name,
                                                            const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(*registry_);
}

prometheus::Family<prometheus::Gauge>& Registry::gauges(const std::string& name,
                                                        const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(*registry_);
}

prometheus::Family<prometheus::Histogram>& Registry::histograms(const std::string& name,
                                                                const std::string& help) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(*registry_);
}

prometheus::Counter& Registry::counter(const std::string& name, const std::string& help,
                                       const Labels& labels) {
  return counters(name, help).Add(labels);
}

prometheus::Gauge& Registry::gauge(const std::string& name, const std::string& help,
                                   const Labels& labels) {
  return gauges(name, help).Add(labels);
}

prometheus::Histogram& Registry::histogram(const std::string& name, const std::string& help,
                                           const prometheus::Histogram::BucketBoundaries& buckets,
                                           const Labels& labels) {
  return histograms(name, help).Add(labels, buckets);
}

prometheus::Histogram::BucketBoundaries Registry::latency_buckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5, 10};
}

void Registry::on_scrape(std::function<void()> refresh) {
  std::lock_guard lock(scrape_mutex_);
  refreshers_.push_back(std::move(refresh));
}

std::string Registry::serialize() {
  std::lock_guard lock(scrape_mutex_);
  for (auto& refresh : refreshers_) refresh();
  prometheus::TextSerializer serializer;
  std::ostringstream out;
  serializer.Serialize(out, registry_->Collect());
  return out.str();
}

void advance_counter(prometheus::Counter& counter, double total) {
  const double now = counter.Value();
  if (total > now) counter.Increment(total - now);
}

}  // namespace balanced::observe
