#include "cache/open.h"

#include "cache/memory_cache.h"
#include "cache/redis_cache.h"

namespace balanced::cache {

Result<OpenedCache> open_cache(const CacheSettings& settings) {
  OpenedCache opened;
  if (settings.url == "memory") {
    opened.cache = std::make_unique<MemoryCache>(settings.memory_entries_max);
    return opened;
  }
  if (settings.url == "none") {
    opened.cache = std::make_unique<NoCache>();
    return opened;
  }
  auto options = redis::parse_url(settings.url);
  if (!options.ok()) return options.error();
  options.value().timeout_ms = settings.redis_timeout_ms;
  opened.redis = std::make_shared<redis::Client>(std::move(options.value()));
  opened.cache = std::make_unique<RedisCache>(
      *opened.redis, RedisCacheOptions{.ttl_ms = settings.ttl_ms, .key_prefix = "balanced:account:"});
  return opened;
}

}  // namespace balanced::cache
