#include "cache/open.h"

#include "cache/memory_cache.h"
#include "cache/redis_cache.h"

namespace balanced::cache {

bool uses_redis(const CacheSettings& settings) {
  return settings.url != "memory" && settings.url != "none";
}

Result<OpenedCache> open_cache(const CacheSettings& settings, std::shared_ptr<redis::Client> redis) {
  OpenedCache opened;
  if (settings.url == "memory") {
    opened.cache = std::make_unique<MemoryCache>(settings.memory_entries_max);
    return opened;
  }
  if (settings.url == "none") {
    opened.cache = std::make_unique<NoCache>();
    return opened;
  }
  if (redis == nullptr) return Error{Code::internal, "--cache names Redis, and no client was opened"};
  opened.redis = std::move(redis);
  opened.cache = std::make_unique<RedisCache>(
      *opened.redis, RedisCacheOptions{.ttl_ms = settings.ttl_ms});
  return opened;
}

}  // namespace balanced::cache
