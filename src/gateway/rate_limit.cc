#include "gateway/rate_limit.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "core/monotonic.h"
#include "observe/log.h"

namespace balanced::gateway {
namespace {

// KEYS[1] the bucket; ARGV rate per ms, burst. Answers {allowed, remaining, retry_ms,
// reset_ms}. Time comes from the Redis server, so all gateways share one clock.
constexpr std::string_view kScript = R"lua(
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local state = redis.call('HMGET', KEYS[1], 't', 'u')
local tokens = tonumber(state[1])
local updated = tonumber(state[2])
if tokens == nil or updated == nil then
  tokens = burst
  updated = now
end
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
local allowed = 0
local retry = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry = math.ceil((1 - tokens) / rate)
end
local reset = math.ceil((burst - tokens) / rate)
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'u', tostring(now))
redis.call('PEXPIRE', KEYS[1], reset + 1000)
return {allowed, math.floor(tokens), retry, reset}
)lua";

}  // namespace

int64_t RatePolicy::refill_ms() const {
  return static_cast<int64_t>(std::ceil(static_cast<double>(burst) * 1000.0 / rate_per_s));
}

std::optional<RatePolicy> parse_rate_policy(std::string_view text) {
  const size_t slash = text.find("/s:");
  if (slash == std::string_view::npos) return std::nullopt;
  double rate = 0;
  int64_t burst = 0;
  const std::string_view rate_text = text.substr(0, slash);
  const std::string_view burst_text = text.substr(slash + 3);
  auto [rate_end, rate_ec] = std::from_chars(rate_text.data(), rate_text.data() + rate_text.size(), rate);
  auto [burst_end, burst_ec] =
      std::from_chars(burst_text.data(), burst_text.data() + burst_text.size(), burst);
  if (rate_ec != std::errc{} || rate_end != rate_text.data() + rate_text.size() ||
      burst_ec != std::errc{} || burst_end != burst_text.data() + burst_text.size() ||
      !(rate > 0) || rate > 1e9 || burst < 1 || burst > 1'000'000'000) {
    return std::nullopt;
  }
  return RatePolicy{rate, burst};
}

RateDecision take(Bucket& bucket, bool is_new, const RatePolicy& policy, int64_t now) {
  const double rate_per_ms = policy.rate_per_s / 1000.0;
  const double burst = static_cast<double>(policy.burst);
  if (is_new) {
    bucket.tokens = burst;
    bucket.updated_ms = now;
  }
  const int64_t elapsed = std::max<int64_t>(0, now - bucket.updated_ms);
  bucket.tokens = std::min(burst, bucket.tokens + static_cast<double>(elapsed) * rate_per_ms);
  bucket.updated_ms = std::max(bucket.updated_ms, now);
  RateDecision decision;
  if (bucket.tokens >= 1) {
    bucket.tokens -= 1;
  } else {
    decision.allowed = false;
    decision.retry_after_ms = static_cast<int64_t>(std::ceil((1 - bucket.tokens) / rate_per_ms));
  }
  decision.remaining = static_cast<int64_t>(std::floor(bucket.tokens));
  decision.reset_ms = static_cast<int64_t>(std::ceil((burst - bucket.tokens) / rate_per_ms));
  return decision;
}

std::optional<RateDecision> LocalLimiter::check(std::string_view key, const RatePolicy& policy, Decided) {
  return check(key, policy);
}

RateDecision LocalLimiter::check(std::string_view key, const RatePolicy& policy) {
  return check_at(key, policy, core::monotonic_ms());
}

RateDecision LocalLimiter::check_at(std::string_view key, const RatePolicy& policy, int64_t now) {
  Shard& shard = shards_[std::hash<std::string_view>{}(key) % shards];
  std::lock_guard lock(shard.mutex);
  auto found = shard.buckets.find(std::string(key));
  if (found == shard.buckets.end()) {
    if (shard.buckets.size() >= shard_max_) {
      // Buckets untouched for a full refill are full again: forgetting them changes nothing.
      const int64_t refill = policy.refill_ms();
      std::erase_if(shard.buckets, [&](const auto& entry) { return now - entry.second.updated_ms >= refill; });
    }
    if (shard.buckets.size() >= shard_max_) {
      Bucket transient;
      return take(transient, true, policy, now);
    }
    auto [inserted, ignored] = shard.buckets.emplace(std::string(key), Bucket{});
    return take(inserted->second, true, policy, now);
  }
  return take(found->second, false, policy, now);
}

size_t LocalLimiter::size() {
  size_t total = 0;
  for (auto& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    total += shard.buckets.size();
  }
  return total;
}

RateLimitStats::RateLimitStats(observe::Registry& registry, const std::string& prefix)
    : allowed_ip(registry.counter(prefix + "_rate_limit_decisions_total",
                                  "Rate-limit decisions, by bucket kind and decision",
                                  {{"limit", "ip"}, {"decision", "allowed"}})),
      limited_ip(registry.counter(prefix + "_rate_limit_decisions_total",
                                  "Rate-limit decisions, by bucket kind and decision",
                                  {{"limit", "ip"}, {"decision", "limited"}})),
      allowed_principal(registry.counter(prefix + "_rate_limit_decisions_total",
                                         "Rate-limit decisions, by bucket kind and decision",
                                         {{"limit", "principal"}, {"decision", "allowed"}})),
      limited_principal(registry.counter(prefix + "_rate_limit_decisions_total",
                                         "Rate-limit decisions, by bucket kind and decision",
                                         {{"limit", "principal"}, {"decision", "limited"}})),
      redis_fallbacks(registry.counter(prefix + "_rate_limit_redis_fallbacks_total",
                                       "Rate-limit decisions made locally because Redis failed")) {}

RedisLimiter::RedisLimiter(redis::Client& client, RateLimitStats* stats, std::string prefix,
                           redis::PipelineOptions pipeline)
    : stats_(stats), prefix_(std::move(prefix)), script_(kScript), pipeline_(client, pipeline) {}

RedisLimiter::~RedisLimiter() { stop(); }

void RedisLimiter::stop() { pipeline_.stop(); }

std::optional<RateDecision> RedisLimiter::check(std::string_view key, const RatePolicy& policy, Decided later) {
  return send(key, policy, std::make_shared<Decided>(std::move(later)), false);
}

std::optional<RateDecision> RedisLimiter::send(std::string_view key, const RatePolicy& policy,
                                               const Pending& pending, bool whole_script) {
  // One hash tag per key: the bucket lives whole on one cluster node.
  std::string redis_key = prefix_ + "{" + std::string(key) + "}";
  char rate[64];
  std::snprintf(rate, sizeof rate, "%.17g", policy.rate_per_s / 1000.0);
  redis::Command command = script_.call(redis_key, {rate, std::to_string(policy.burst)});
  if (whole_script) command = script_.whole(std::move(command));
  redis::Pipeline::Commands commands;
  commands.emplace_back(std::move(redis_key), std::move(command));
  redis::Pipeline::Done done = [this, key = std::string(key), policy, pending, whole_script](
                                   redis::Pipeline::Commands&&, std::vector<Result<redis::Reply>>&& replies) {
    const Result<redis::Reply>& reply = replies.front();
    // A node that does not have the script yet (new, restarted, failed over) gets it whole, once.
    if (!whole_script && redis::Script::missing(reply)) {
      if (auto decision = send(key, policy, pending, true)) (*pending)(*decision);
      return;
    }
    (*pending)(decide(reply, key, policy));
  };
  if (pipeline_.submit(commands, done)) return std::nullopt;
  // Redis's queue is full (or the limiter stopped): decide here, as when Redis is down.
  return decide(Error{Code::unavailable, "rate-limit queue full"}, key, policy);
}

RateDecision RedisLimiter::decide(const Result<redis::Reply>& reply, std::string_view key, const RatePolicy& policy) {
  const bool good = reply.ok() && reply.value().type == redis::Reply::Type::array &&
                    reply.value().elements.size() == 4;
  if (!good) {
    if (stats_) stats_->redis_fallbacks.Increment();
    if (!degraded_.exchange(true)) {
      observe::log(observe::LogLevel::warn, "rate limits: Redis unreachable, deciding with local buckets",
                   {{"error.message", reply.ok() ? reply.value().text : reply.error().detail}});
    }
    return fallback_.check(key, policy);
  }
  if (degraded_.exchange(false)) {
    observe::log(observe::LogLevel::info, "rate limits: Redis answers again");
  }
  const auto& e = reply.value().elements;
  RateDecision decision;
  decision.allowed = e[0].integer == 1;
  decision.remaining = e[1].integer;
  decision.retry_after_ms = e[2].integer;
  decision.reset_ms = e[3].integer;
  return decision;
}

void add_rate_headers(std::string_view name, const RatePolicy& policy, const RateDecision& decision,
                      std::vector<std::pair<std::string, std::string>>& headers) {
  const int64_t window_s = std::max<int64_t>(1, (policy.refill_ms() + 999) / 1000);
  headers.emplace_back("RateLimit-Policy", "\"" + std::string(name) + "\";q=" +
                                               std::to_string(policy.burst) + ";w=" + std::to_string(window_s));
  const int64_t reset_s = (decision.allowed ? decision.reset_ms : decision.retry_after_ms + 999) / 1000;
  headers.emplace_back("RateLimit", "\"" + std::string(name) + "\";r=" +
                                        std::to_string(std::max<int64_t>(0, decision.remaining)) +
                                        ";t=" + std::to_string(std::max<int64_t>(0, reset_s)));
}

}  // namespace balanced::gateway
