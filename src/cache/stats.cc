#include "cache/stats.h"

namespace balanced::cache {

void register_cache_metrics(observe::Registry& registry, Cache& cache) {
  auto& hits = registry.counter("balanced_cache_hits_total", "Balance reads answered by the cache");
  auto& misses = registry.counter("balanced_cache_misses_total",
                                  "Balance reads the cache could not answer");
  auto& errors = registry.counter("balanced_cache_errors_total",
                                  "Cache requests that failed and were served as misses");
  auto& entries = registry.gauge("balanced_cache_entries", "Accounts held by the cache");
  auto& unsettled = registry.gauge("balanced_cache_unsettled_accounts",
                                   "Accounts whose cache write failed and is being retried; read from the store");
  auto& dropped = registry.counter("balanced_cache_unsettled_dropped_total",
                                   "Failed cache writes past the retry bound: entries older than the store until their TTL");
  registry.on_scrape([&cache, &hits, &misses, &errors, &entries, &unsettled, &dropped] {
    const CacheStats stats = cache.stats();
    observe::advance_counter(hits, static_cast<double>(stats.hits));
    observe::advance_counter(misses, static_cast<double>(stats.misses));
    observe::advance_counter(errors, static_cast<double>(stats.errors));
    entries.Set(static_cast<double>(stats.entries));
    unsettled.Set(static_cast<double>(stats.unsettled));
    observe::advance_counter(dropped, static_cast<double>(stats.unsettled_dropped));
  });
}

}  // namespace balanced::cache
