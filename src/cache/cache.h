// The cache seam: account snapshots keyed by account number, each carrying its version.
// Correctness never rests on the cache: the store decides, the cache only answers reads
// faster. A cache that cannot answer behaves as a miss.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "core/types.h"

namespace balanced::cache {

struct CacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t stale_writes_ignored = 0;
  uint64_t entries = 0;  // where the cache knows it
  uint64_t errors = 0;   // requests a remote cache could not answer (served as misses)
};

class Cache {
 public:
  virtual ~Cache() = default;
  // The cached snapshot, or nullopt on a miss. Thread-safe.
  virtual std::optional<core::Account> get(std::string_view number) = 0;
  // Stores the snapshot unless the cache already holds the same or a newer version of
  // the account. Thread-safe; never fails the caller.
  virtual void put_if_newer(const core::Account& account) = 0;
  virtual void put_many_if_newer(std::span<const core::Account> accounts) {
    for (const auto& account : accounts) put_if_newer(account);
  }
  virtual CacheStats stats() const = 0;
};

}  // namespace balanced::cache
