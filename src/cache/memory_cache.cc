#include "cache/memory_cache.h"

#include <functional>

namespace balanced::cache {

MemoryCache::Shard& MemoryCache::shard_for(std::string_view number) {
  return shards_[std::hash<std::string_view>{}(number) % shard_count];
}

std::optional<core::Account> MemoryCache::get(std::string_view number) {
  Shard& shard = shard_for(number);
  MutexLock lock(shard.mutex);
  auto it = shard.entries.find(number);
  if (it == shard.entries.end()) {
    misses_.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }
  hits_.fetch_add(1, std::memory_order_relaxed);
  return it->second;
}

void MemoryCache::put_if_newer(const core::Account& account) {
  Shard& shard = shard_for(account.number);
  MutexLock lock(shard.mutex);
  auto it = shard.entries.find(account.number);
  if (it == shard.entries.end()) {
    if (entries_.load(std::memory_order_relaxed) >= entries_max_) return;
    entries_.fetch_add(1, std::memory_order_relaxed);
    shard.entries.emplace(account.number, account);
    return;
  }
  if (it->second.version >= account.version) {
    stale_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  it->second = account;
}

CacheStats MemoryCache::stats() const {
  return CacheStats{.hits = hits_.load(),
                    .misses = misses_.load(),
                    .stale_writes_ignored = stale_.load(),
                    .entries = entries_.load()};
}

}  // namespace balanced::cache
