// Builds the cache a --cache value names: memory, none, redis://HOST:PORT or
// redis-cluster://HOST:PORT,HOST:PORT,...
#pragma once

#include <memory>
#include <string>

#include "cache/cache.h"
#include "redis/client.h"

namespace balanced::cache {

struct CacheSettings {
  std::string url = "memory";
  size_t memory_entries_max = 10'000'000;
  int64_t ttl_ms = 3'600'000;
  int redis_timeout_ms = 200;
};

struct OpenedCache {
  // Set for redis:// and redis-cluster://: the client is shared with the lease.
  std::shared_ptr<redis::Client> redis;
  std::unique_ptr<Cache> cache;
};

Result<OpenedCache> open_cache(const CacheSettings& settings);

}  // namespace balanced::cache
