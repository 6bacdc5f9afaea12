// The cache's metrics: counters copied from Cache::stats() at each scrape.
#pragma once

#include "cache/cache.h"
#include "observe/registry.h"

namespace balanced::cache {

// Registers the cache's metrics and their refresh; the cache and registry must outlive
// each other's use (both live until the process ends).
void register_cache_metrics(observe::Registry& registry, Cache& cache);

}  // namespace balanced::cache
