// The base layer shared by both binaries: addresses and URLs, the router, headers.
#include <gtest/gtest.h>

#include <set>

#include "api/api.h"
#include "http/message.h"
#include "http/router.h"
#include "net/url.h"

namespace balanced {
namespace {

TEST(HostPort, ParsesNamesV4AndBracketedV6) {
  EXPECT_EQ(net::parse_host_port("db:3306"), (net::HostPort{"db", 3306}));
  EXPECT_EQ(net::parse_host_port("127.0.0.1:80"), (net::HostPort{"127.0.0.1", 80}));
  EXPECT_EQ(net::parse_host_port("[::1]:8443"), (net::HostPort{"::1", 8443}));
  EXPECT_EQ(net::parse_host_port("[::1]:8443")->text(), "[::1]:8443");
  EXPECT_EQ(net::parse_host_port("0.0.0.0:0", true), (net::HostPort{"0.0.0.0", 0}));
}

TEST(HostPort, RejectsWhatIsNotOne) {
  for (const char* bad : {"", "db", ":80", "db:", "db:0", "db:65536", "db:8x", "::1:80", "[]:80",
                          "[::1:80", "a b:80", "h/x:80", "u@h:80", "db:-1"}) {
    EXPECT_FALSE(net::parse_host_port(bad)) << bad;
  }
}

TEST(HostPort, Loopback) {
  EXPECT_TRUE(net::is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(net::is_loopback_host("127.3.2.1"));
  EXPECT_TRUE(net::is_loopback_host("::1"));
  EXPECT_TRUE(net::is_loopback_host("localhost"));
  EXPECT_FALSE(net::is_loopback_host("0.0.0.0"));
  EXPECT_FALSE(net::is_loopback_host("10.0.0.1"));
  EXPECT_FALSE(net::is_loopback_host("::"));
}

TEST(Url, SplitsCredentialsAuthorityAndPath) {
  auto url = net::parse_url("mysql://app:s%40cret@db:3306/ledger");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->scheme, "mysql");
  EXPECT_EQ(url->user, "app");
  EXPECT_EQ(url->password, "s@cret");
  EXPECT_TRUE(url->has_password);
  EXPECT_EQ(url->authority, "db:3306");
  EXPECT_EQ(url->path, "/ledger");
  auto bare = net::parse_url("HTTP://127.0.0.1:8080");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->scheme, "http");
  EXPECT_EQ(bare->authority, "127.0.0.1:8080");
  EXPECT_EQ(bare->path, "");
  EXPECT_FALSE(net::parse_url("no-scheme"));
  EXPECT_FALSE(net::parse_url("://x"));
  EXPECT_FALSE(net::parse_url("a b://x"));
  EXPECT_FALSE(net::parse_url("mysql://u:%zz@h/db"));
}

TEST(Router, LiteralsBeatParametersAndMethodsGive405) {
  http::Router router;
  router.add(1, "POST", "/accounts", "create");
  router.add(2, "POST", "/accounts/transactions", "transfer");
  router.add(3, "GET", "/accounts/{n}", "account");
  router.add(4, "GET", "/accounts/{n}/balance", "balance");
  EXPECT_EQ(router.match("POST", "/accounts/transactions").route, 2);
  EXPECT_EQ(router.match("GET", "/accounts/transactions").route, 3);  // an account named so
  auto balance = router.match("GET", "/accounts/alice/balance/");
  EXPECT_EQ(balance.route, 4);
  EXPECT_EQ(balance.param(0), "alice");
  auto wrong = router.match("DELETE", "/accounts/transactions");
  EXPECT_EQ(wrong.route, -1);
  EXPECT_EQ(wrong.allow, "GET, POST");
  EXPECT_EQ(router.match("GET", "/accounts//balance").route, -1);
  EXPECT_EQ(router.match("GET", "/a/b/c/d/e/f/g/h/i/j").route, -1);
  EXPECT_EQ(router.match("GET", "/nothing").allow, "");
  EXPECT_EQ(router.label(4), "balance");
  EXPECT_EQ(router.label(-1), "other");
  EXPECT_EQ(router.labels().back(), "other");
}

TEST(UuidV7, HoldsTheMillisecondsTheVersionAndTheVariant) {
  const int64_t ms = 0x0123456789ab;
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = api::uuid_v7(ms);
    ASSERT_EQ(id.size(), 36u) << id;
    for (size_t at = 0; at < id.size(); ++at) {
      if (at == 8 || at == 13 || at == 18 || at == 23) {
        ASSERT_EQ(id[at], '-') << id;
      } else {
        ASSERT_TRUE((id[at] >= '0' && id[at] <= '9') || (id[at] >= 'a' && id[at] <= 'f')) << id;
      }
    }
    EXPECT_EQ(id.substr(0, 13), "01234567-89ab") << id;  // the 48-bit time, big-endian
    EXPECT_EQ(id[14], '7') << id;                          // version 7
    EXPECT_NE(std::string_view("89ab").find(id[19]), std::string_view::npos) << id;  // variant 10
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);  // 74 random bits each
}

TEST(Headers, LookedUpWithoutRegardToCase) {
  http::Request request;
  request.headers = {{"Content-Type", "a"}, {"x-request-id", "r1"}, {"X-Request-Id", "r2"}};
  EXPECT_EQ(request.header("content-type"), "a");
  EXPECT_EQ(request.header("X-REQUEST-ID"), "r1");
  request.remove_header("x-request-ID");
  EXPECT_FALSE(request.has_header("X-Request-Id"));
  request.set_header("X-Request-Id", "mine");
  EXPECT_EQ(request.header("x-request-id"), "mine");
}

}  // namespace
}  // namespace balanced
