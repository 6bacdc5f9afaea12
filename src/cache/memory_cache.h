// The in-process cache: sharded hash maps, each behind its own mutex.
//
// It never evicts. An evicted entry would let a reader that loaded an old snapshot before
// a commit put it back after the commit's newer snapshot was evicted, and a client would
// see the version go back. So the cache holds at most entries_max accounts and, when
// full, simply stops adding new ones (their reads go to the store).
#pragma once

#include <array>
#include <atomic>
#include <mutex>
#include <string>
#include <unordered_map>

#include "cache/cache.h"
#include "core/mutex.h"
#include "core/string_map.h"

namespace balanced::cache {

class MemoryCache final : public Cache {
 public:
  explicit MemoryCache(size_t entries_max) : entries_max_(entries_max) {}
  std::optional<core::Account> get(std::string_view number) override;
  void put_if_newer(const core::Account& account) override;
  CacheStats stats() const override;

 private:
  static constexpr size_t shard_count = 64;
  struct Shard {
    Mutex mutex;
    core::FlatStringMap<core::Account> entries GUARDED_BY(mutex);
  };
  Shard& shard_for(std::string_view number);

  const size_t entries_max_;
  std::array<Shard, shard_count> shards_;
  std::atomic<uint64_t> entries_{0};
  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> misses_{0};
  std::atomic<uint64_t> stale_{0};
};

// --cache none: every read goes to the store.
class NoCache final : public Cache {
 public:
  std::optional<core::Account> get(std::string_view) override { return std::nullopt; }
  void put_if_newer(const core::Account&) override {}
  CacheStats stats() const override { return {}; }
};

}  // namespace balanced::cache
