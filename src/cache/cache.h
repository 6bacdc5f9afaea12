// The cache seam: account snapshots keyed by account number, each carrying its version.
// Correctness never rests on the cache: the store decides, the cache only answers reads
// faster. A cache that cannot answer behaves as a miss.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "core/types.h"

namespace balanced::cache {

struct CacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t stale_writes_ignored = 0;
  uint64_t entries = 0;  // where the cache knows it
  uint64_t errors = 0;   // requests a remote cache could not answer (served as misses)
  uint64_t unsettled = 0;  // accounts whose write-through failed and is being retried
  uint64_t unsettled_dropped = 0;  // failed write-throughs past the retry bound, not retried
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

  // The same, for callers that must not wait on a remote cache (HTTP workers,
  // committers). `done` runs exactly once: inline for an in-process cache, else on the
  // cache's I/O thread, where it must not block (hand the work back to your own thread).
  // put_many_async calls `done` once the write is made (or has failed), so a caller that
  // answers from `done` keeps read-your-writes through the cache.
  using GetDone = std::function<void(std::optional<core::Account>)>;
  // True when get() never waits on anything remote (an in-process cache): a caller that
  // must not block may then call get() itself, and skip get_async()'s callback.
  virtual bool answers_at_once() const { return true; }
  using PutDone = std::function<void()>;
  virtual void get_async(std::string_view number, GetDone done) { done(get(number)); }
  virtual void put_many_async(std::vector<core::Account> accounts, PutDone done) {
    put_many_if_newer(accounts);
    done();
  }
  // Answers everything in flight and stops the cache's I/O thread, if it has one; later
  // calls are answered on the caller's thread. Call before the threads `done` hands work
  // to go away.
  virtual void stop() {}
};

}  // namespace balanced::cache
