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
// misses (served by the database) and its writes no-ops, and its circuit breaker keeps
// the next requests from waiting on it.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "cache/cache.h"
#include "redis/client.h"
#include "redis/pipeline.h"

namespace balanced::cache {

struct RedisCacheOptions {
  int64_t ttl_ms = 3'600'000;
  std::string key_prefix = "balanced:account:";
  redis::PipelineOptions pipeline;  // the bounds of the asynchronous calls' queue
};

class RedisCache final : public Cache {
 public:
  // The client must outlive the cache.
  RedisCache(redis::Client& client, RedisCacheOptions options);
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
  void count_puts(const redis::Pipeline::Commands& commands, std::vector<Result<redis::Reply>>& results);

  redis::Client& client_;
  const RedisCacheOptions options_;
  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> misses_{0};
  std::atomic<uint64_t> stale_{0};
  std::atomic<uint64_t> errors_{0};
  redis::Pipeline pipeline_;  // last: its thread stops before the counters go
};

}  // namespace balanced::cache
