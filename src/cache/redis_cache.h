// The shared cache of a replicated deployment: Redis or Redis Cluster, cache-aside.
//
// An entry is one string key per account, "balanced:account:<number>", holding
// "<version>|<balance>|<overdraft>|<currency>|<created>|<updated>" with a TTL (1 h by
// default, a backstop). Every write goes through one Lua script that compares versions
// and ignores a write that is not newer, atomically on the node that owns the key, so a
// reader that loaded an old row before a commit cannot put it back after the commit's
// newer snapshot. Entries are written through after each commit (not deleted), so a hot
// account does not stampede the database.
//
// Redis is never needed for correctness: a node that fails or times out makes its reads
// misses (served by the database), and its circuit breaker keeps the next requests from
// waiting on it. A write-through that fails leaves the entry older than the database, so
// the account is kept as "unsettled": this replica reads it from the database, and a
// thread (`cache-retry`) writes its newest snapshot again every retry_interval_ms until
// that write, or a newer one, lands. Other replicas may read the older entry until then.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>

#include "cache/cache.h"
#include "core/mutex.h"
#include "redis/client.h"
#include "redis/pipeline.h"

namespace balanced::cache {

struct RedisCacheOptions {
  int64_t ttl_ms = 3'600'000;
  // v2: entries with the account fields of DESIGN.md section 10 (the first release's
  // entries, under balanced:account:, are never read: they expire by their TTL).
  std::string key_prefix = "balanced:account:v2:";
  redis::PipelineOptions pipeline;  // the bounds of the asynchronous calls' queue
  // How often the unsettled accounts' snapshots are written again.
  int64_t retry_interval_ms = 1000;
  // Unsettled accounts at most. Past the bound a failed write is dropped (counted): that
  // account's entry may then stay older than the database until its TTL, as without the
  // retry.
  size_t unsettled_accounts_max = 65'536;
};

class RedisCache final : public Cache {
 public:
  // The client must outlive the cache.
  RedisCache(redis::Client& client, RedisCacheOptions options);
  ~RedisCache() override;
  RedisCache(const RedisCache&) = delete;
  RedisCache& operator=(const RedisCache&) = delete;
  std::optional<core::Account> get(std::string_view number) override;
  void put_if_newer(const core::Account& account) override;
  void put_many_if_newer(std::span<const core::Account> accounts) override;
  // Both through one redis-io thread, pipelined with every other caller's; when its
  // queue is full, a read is a miss and a write is made on the caller's thread (never
  // left undone: a skipped write-through would leave an older balance readable).
  bool answers_at_once() const override { return false; }
  void get_async(std::string_view number, GetDone done) override;
  void put_many_async(std::vector<core::Account> accounts, PutDone done) override;
  void stop() override;
  CacheStats stats() const override;

  // The stored form of an account and back (exposed for tests).
  static std::string encode(const core::Account& account);
  static std::optional<core::Account> decode(std::string_view number, std::string_view value);

 private:
  std::string key(std::string_view number) const { return options_.key_prefix + std::string(number); }
  std::optional<core::Account> read(std::string_view number, const Result<redis::Reply>& reply);
  redis::Pipeline::Commands put_commands(std::span<const core::Account> accounts) const;
  // Counts the replies to put_commands(accounts), and settles or unsettles each account.
  void count_puts(std::span<const core::Account> accounts, const redis::Pipeline::Commands& commands,
                  std::vector<Result<redis::Reply>>& results);
  bool is_unsettled(std::string_view number) const;
  void retry_unsettled();  // the cache-retry thread
  void stop_retrying();

  redis::Client& client_;
  const RedisCacheOptions options_;
  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> misses_{0};
  std::atomic<uint64_t> stale_{0};
  std::atomic<uint64_t> errors_{0};
  std::atomic<uint64_t> unsettled_dropped_{0};
  mutable Mutex unsettled_mutex_;
  std::condition_variable unsettled_wake_;
  // Accounts whose newest write-through failed, with that snapshot.
  std::unordered_map<std::string, core::Account> unsettled_ GUARDED_BY(unsettled_mutex_);
  std::atomic<size_t> unsettled_count_{0};  // unsettled_.size(), read without the lock
  bool stopping_ GUARDED_BY(unsettled_mutex_) = false;
  std::thread retrier_;
  redis::Pipeline pipeline_;  // last: its thread stops before the counters go
};

}  // namespace balanced::cache
