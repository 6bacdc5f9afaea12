#include "cache/stats.h"

namespace balanced::cache {

void register_cache_metrics(observe::Registry& registry, Cache& cache) {
  auto& hits = registry.counter("balanced_cache_hits_total", "Balance reads answered by the cache");
  auto& misses = registry.counter("balanced_cache_misses_total",
                                  "Balance reads the cache could not answer");
  auto& errors = registry.counter("balanced_cache_errors_total",
                                  "Cache requests that failed and were served as misses");
  auto& entries = registry.gauge("balanced_cache_entries", "Accounts held by the cache");
  registry.on_scrape([&cache, &hits, &misses, &errors, &entries] {
    const CacheStats stats = cache.stats();
    observe::advance_counter(hits, static_cast<double>(stats.hits));
    observe::advance_counter(misses, static_cast<double>(stats.misses));
    observe::advance_counter(errors, static_cast<double>(stats.errors));
    entries.Set(static_cast<double>(stats.entries));
  });
}

}  // namespace balanced::cache
