// The gateway's pure parts: token-bucket arithmetic with an injected clock, policies,
// networks and client addresses, request ids and trace context.
#include <gtest/gtest.h>

#include "gateway/rate_limit.h"
#include "gateway/request_info.h"
#include "http/tracing.h"

namespace balanced::gateway {
namespace {

TEST(TokenBucket, BurstThenRefillAtTheRate) {
  const RatePolicy policy{10, 3};  // 10/s, burst 3: one token per 100 ms
  Bucket bucket;
  auto first = take(bucket, true, policy, 1000);
  EXPECT_TRUE(first.allowed);
  EXPECT_EQ(first.remaining, 2);
  EXPECT_TRUE(take(bucket, false, policy, 1000).allowed);
  EXPECT_TRUE(take(bucket, false, policy, 1000).allowed);
  auto refused = take(bucket, false, policy, 1000);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.remaining, 0);
  EXPECT_EQ(refused.retry_after_ms, 100);
  EXPECT_EQ(refused.reset_ms, 300);
  EXPECT_FALSE(take(bucket, false, policy, 1099).allowed);  // 0.99 of a token
  // A refusal takes nothing: the 0.99 stays and 101 ms later there are 2 tokens.
  EXPECT_TRUE(take(bucket, false, policy, 1200).allowed);
  EXPECT_TRUE(take(bucket, false, policy, 1200).allowed);
  EXPECT_FALSE(take(bucket, false, policy, 1200).allowed);
  // A long pause fills it to the burst, never beyond.
  EXPECT_EQ(take(bucket, false, policy, 60'000).remaining, 2);
  // Time going backwards (another clock) takes nothing away and gives nothing.
  Bucket other;
  take(other, true, policy, 5000);
  EXPECT_TRUE(take(other, false, policy, 4000).allowed);
  EXPECT_TRUE(take(other, false, policy, 4000).allowed);
  EXPECT_FALSE(take(other, false, policy, 4000).allowed);
}

TEST(TokenBucket, LocalBucketsAreBoundedAndForgetOnlyFullOnes) {
  LocalLimiter limiter(LocalLimiter::shards * 4);
  const RatePolicy policy{1, 1};
  for (int i = 0; i < 1000; ++i) limiter.check_at("key-" + std::to_string(i), policy, 0);
  EXPECT_LE(limiter.size(), LocalLimiter::shards * 5);
  // A drained bucket is still remembered a moment later...
  EXPECT_TRUE(limiter.check_at("hot", policy, 10'000).allowed);
  EXPECT_FALSE(limiter.check_at("hot", policy, 10'100).allowed);
  // ...and refills.
  EXPECT_TRUE(limiter.check_at("hot", policy, 11'100).allowed);
}

TEST(TokenBucket, PoliciesParseStrictly) {
  auto policy = parse_rate_policy("100/s:200");
  ASSERT_TRUE(policy);
  EXPECT_EQ(policy->rate_per_s, 100);
  EXPECT_EQ(policy->burst, 200);
  EXPECT_EQ(policy->refill_ms(), 2000);
  EXPECT_TRUE(parse_rate_policy("0.5/s:1"));
  for (const char* bad : {"", "100", "100/s", "100/s:", "0/s:1", "-1/s:1", "10/m:5", "10/s:0", "x/s:1", "1/s:1x"}) {
    EXPECT_FALSE(parse_rate_policy(bad)) << bad;
  }
}

TEST(TokenBucket, HeadersFollowTheDraft) {
  std::vector<std::pair<std::string, std::string>> headers;
  add_rate_headers("principal", RatePolicy{100, 200}, RateDecision{true, 150, 0, 500}, headers);
  ASSERT_EQ(headers.size(), 2u);
  EXPECT_EQ(headers[0].first, "RateLimit-Policy");
  EXPECT_EQ(headers[0].second, "\"principal\";q=200;w=2");
  EXPECT_EQ(headers[1].second, "\"principal\";r=150;t=0");
}

TEST(Networks, CidrsAndClientAddresses) {
  auto ten = parse_cidr("10.0.0.0/8");
  ASSERT_TRUE(ten);
  EXPECT_TRUE(ten->contains("10.1.2.3"));
  EXPECT_FALSE(ten->contains("11.0.0.1"));
  EXPECT_FALSE(ten->contains("::1"));
  auto v6 = parse_cidr("fd00::/8");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->contains("fd12::1"));
  EXPECT_TRUE(parse_cidr("127.0.0.1")->contains("127.0.0.1"));
  for (const char* bad : {"", "10.0.0.0/33", "10.0.0/8", "x/1", "::/129", "10.0.0.0/-1"}) {
    EXPECT_FALSE(parse_cidr(bad)) << bad;
  }
  const std::vector<Cidr> trusted{*parse_cidr("10.0.0.0/8")};
  EXPECT_EQ(client_address("1.2.3.4", "9.9.9.9", trusted), "1.2.3.4");  // untrusted peer: its own address
  EXPECT_EQ(client_address("10.0.0.5", "9.9.9.9, 8.8.8.8", trusted), "8.8.8.8");
  EXPECT_EQ(client_address("10.0.0.5", "9.9.9.9, 10.0.0.7", trusted), "9.9.9.9");
  EXPECT_EQ(client_address("10.0.0.5", "garbage, 10.0.0.7", trusted), "10.0.0.7");
  EXPECT_EQ(client_address("10.0.0.5", "", trusted), "10.0.0.5");
}

TEST(RequestInfo, IdsAndTraceContext) {
  http::Request request;
  request.headers = {{"X-Request-Id", "abc-123_x.y"}};
  EXPECT_EQ(http::request_id_of(request), "abc-123_x.y");
  request.headers = {{"X-Request-Id", std::string(129, 'a')}};
  EXPECT_EQ(http::request_id_of(request).size(), 32u);
  request.headers = {{"X-Request-Id", "bad id"}};
  EXPECT_NE(http::request_id_of(request), "bad id");
  std::string trace;
  request.headers = {{"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}};
  EXPECT_EQ(http::traceparent_of(request, trace), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  EXPECT_EQ(trace, "0af7651916cd43dd8448eb211c80319c");
  for (const char* bad : {"00-00000000000000000000000000000000-b7ad6b7169203331-01",
                          "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
                          "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01", "garbage"}) {
    request.headers = {{"traceparent", bad}};
    const std::string started = http::traceparent_of(request, trace);
    EXPECT_NE(started, bad);
    EXPECT_EQ(started.size(), 55u);
    EXPECT_EQ(started.substr(3, 32), trace);
  }
}

}  // namespace
}  // namespace balanced::gateway
