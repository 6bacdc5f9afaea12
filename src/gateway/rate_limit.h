// Token-bucket rate limits (per principal and per client address), local or shared by
// every gateway replica through Redis.
//
// A bucket holds at most `burst` tokens and refills at `rate_per_s`; a request takes one
// token or is refused with the wait until one is back (Retry-After). The arithmetic is
// pure (take()); LocalLimiter keeps buckets in memory (bounded: idle full buckets are
// dropped first), RedisLimiter makes each decision with one Lua script on the key's
// node, using Redis's clock so every gateway agrees, with the key's TTL bounded by the
// time a bucket takes to refill. Its calls go through a redis::Pipeline: the gateway's
// workers never wait on Redis, and the decision comes back on a redis-io thread. When
// Redis cannot answer, the decision is made by the local buckets instead (logged once,
// counted): a Redis outage never fails a request.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "observe/registry.h"
#include "redis/client.h"
#include "redis/pipeline.h"
#include "redis/script.h"

namespace balanced::gateway {

struct RatePolicy {
  double rate_per_s = 100;
  int64_t burst = 200;
  // The time a drained bucket takes to fill up again.
  int64_t refill_ms() const;
};

// "N/s:BURST", e.g. "100/s:200".
std::optional<RatePolicy> parse_rate_policy(std::string_view text);

struct Bucket {
  double tokens = 0;
  int64_t updated_ms = 0;
};

struct RateDecision {
  bool allowed = true;
  int64_t remaining = 0;       // whole tokens left after this request
  int64_t retry_after_ms = 0;  // when refused: until a token is back
  int64_t reset_ms = 0;        // until the bucket is full again
};

// Takes one token from `bucket` at `now_ms` (a new bucket starts full).
RateDecision take(Bucket& bucket, bool is_new, const RatePolicy& policy, int64_t now_ms);

class RateLimiter {
 public:
  using Decided = std::function<void(const RateDecision&)>;
  virtual ~RateLimiter() = default;
  // Takes one token of `key`'s bucket. Returns the decision when it is made at once (and
  // then never calls `later`); otherwise returns nothing and calls `later` exactly once
  // with the decision, on another thread, which must hand it back to its own.
  virtual std::optional<RateDecision> check(std::string_view key, const RatePolicy& policy, Decided later) = 0;
  // Makes every pending decision, then decides at once from then on. Idempotent; call it
  // before what the pending `later`s use is destroyed.
  virtual void stop() {}
};

class LocalLimiter final : public RateLimiter {
 public:
  static constexpr size_t shards = 16;
  // At most `buckets_max` keys are tracked; past that, buckets idle long enough to be
  // full again are dropped, and if none is, the new key is decided as a full bucket.
  explicit LocalLimiter(size_t buckets_max = 1'000'000) : shard_max_(buckets_max / shards + 1) {}
  // Always at once.
  std::optional<RateDecision> check(std::string_view key, const RatePolicy& policy, Decided later) override;
  RateDecision check(std::string_view key, const RatePolicy& policy);
  RateDecision check_at(std::string_view key, const RatePolicy& policy, int64_t now_ms);
  size_t size();

 private:
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, Bucket> buckets;
  };
  const size_t shard_max_;
  std::array<Shard, shards> shards_;
};

struct RateLimitStats {
  RateLimitStats(observe::Registry& registry, const std::string& prefix);
  prometheus::Counter& allowed_ip;
  prometheus::Counter& limited_ip;
  prometheus::Counter& allowed_principal;
  prometheus::Counter& limited_principal;
  prometheus::Counter& redis_fallbacks;  // decisions made locally because Redis failed
};

class RedisLimiter final : public RateLimiter {
 public:
  // The client and stats (may be null) must outlive the limiter.
  RedisLimiter(redis::Client& client, RateLimitStats* stats, std::string prefix = "gw:rl:",
               redis::PipelineOptions pipeline = {});
  ~RedisLimiter() override;
  // Later, unless Redis's queue is full or the limiter stopped: then at once, locally.
  std::optional<RateDecision> check(std::string_view key, const RatePolicy& policy, Decided later) override;
  void stop() override;

 private:
  using Pending = std::shared_ptr<Decided>;
  // Queues the script for `key` (by its SHA-1, or whole when Redis lacks it); the
  // decision goes to `pending`, or is returned when the pipeline refuses.
  std::optional<RateDecision> send(std::string_view key, const RatePolicy& policy, const Pending& pending,
                                   bool whole_script);
  // Redis's answer, or the local buckets' when it is not one.
  RateDecision decide(const Result<redis::Reply>& reply, std::string_view key, const RatePolicy& policy);

  RateLimitStats* stats_;
  const std::string prefix_;
  const redis::Script script_;
  LocalLimiter fallback_;
  std::atomic<bool> degraded_{false};  // for logging the change once
  redis::Pipeline pipeline_;  // last: stopped first, while everything it calls exists
};

// RateLimit-Policy and RateLimit headers (draft-ietf-httpapi-ratelimit-headers-08).
void add_rate_headers(std::string_view name, const RatePolicy& policy, const RateDecision& decision,
                      std::vector<std::pair<std::string, std::string>>& headers);

}  // namespace balanced::gateway
