// Builds the cache a --cache value names: memory, none, or a Redis URL (redis://,
// rediss://, redis-cluster://, rediss-cluster://; see redis/client.h).
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

// True when `settings.url` names Redis: the caller then opens the client
// (service::open_redis, with the security flags) and hands it to open_cache.
bool uses_redis(const CacheSettings& settings);

// `redis` must be set exactly when uses_redis(settings).
Result<OpenedCache> open_cache(const CacheSettings& settings, std::shared_ptr<redis::Client> redis);

}  // namespace balanced::cache
