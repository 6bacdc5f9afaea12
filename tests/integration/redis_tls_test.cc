// Redis as a managed service offers it (DESIGN.md section 12): TLS with the certificate
// checked against a private CA and the host dialed, an ACL user whose password comes from
// a file that is read again after a rotation, and a clear refusal at start of a wrong CA,
// name, password or transport. Against real redis-server processes this test starts.
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "cache/redis_cache.h"
#include "support/accounts.h"
#include "support/certificates.h"
#include "support/servers.h"

namespace balanced::redis {
namespace {

using testing::test_account;
constexpr auto account = test_account;

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

class SecureRedis : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(certificates_.make()) << certificates_.error();
    write_file(password_file_, "s3cret\n");
    server_ = std::make_unique<testing::Redis>(
        dir_.path() / "redis", false,
        testing::RedisSecurity{.certificate = certificates_.certificate(),
                               .key = certificates_.key(),
                               .ca = certificates_.ca(),
                               .user = "balanced",
                               .password = "s3cret"});
    ASSERT_TRUE(server_->start()) << server_->error();
  }
  SecurityOverrides overrides() const {
    return SecurityOverrides{.ca_file = certificates_.ca().string(),
                             .user = "balanced",
                             .password_file = password_file_.string()};
  }

  testing::TempDir dir_;
  testing::TestCertificates certificates_{dir_.path() / "tls", "redis"};
  std::filesystem::path password_file_ = dir_.path() / "redis-password";
  std::unique_ptr<testing::Redis> server_;
};

TEST_F(SecureRedis, TheCacheWorksOverTlsWithAnAclUserByAddressAndByName) {
  for (const std::string host : {"127.0.0.1", "localhost"}) {
    std::string unreachable;
    auto client = open_client("rediss://" + host + ":" + std::to_string(server_->port()), overrides(),
                              500, &unreachable);
    ASSERT_TRUE(client.ok()) << client.error().detail;
    EXPECT_EQ(unreachable, "") << host;
    cache::RedisCache cache(*client.value(), cache::RedisCacheOptions{});
    cache.put_if_newer(account("alice-" + host, 3, 100));
    auto got = cache.get("alice-" + host);
    ASSERT_TRUE(got.has_value()) << host;
    EXPECT_EQ(got->balance, 100);
    EXPECT_EQ(cache.stats().errors, 0u);
    const ClientCounters counters = client.value()->counters();
    EXPECT_EQ(counters.auth_failures + counters.tls_failures + counters.network_failures, 0u);
  }
  // The entry is really in the server, read with redis-cli over TLS.
  EXPECT_NE(server_->cli({"GET", "balanced:account:v2:alice-localhost"}).second.find("100"), std::string::npos);
}

TEST_F(SecureRedis, CredentialsInTheUrlWorkAndTheFlagsWinOverThem) {
  const std::string address = server_->address();
  SecurityOverrides ca_only{.ca_file = certificates_.ca().string()};
  EXPECT_TRUE(open_client("rediss://balanced:s3cret@" + address, ca_only, 500, nullptr).ok());
  // A wrong password in the URL, the right one from the flag's file: the file wins.
  EXPECT_TRUE(open_client("rediss://balanced:wrong@" + address, overrides(), 500, nullptr).ok());
  // The URL's percent-encoding is decoded.
  ASSERT_EQ(server_->cli({"ACL", "SETUSER", "odd", "on", ">p@ss:w/rd", "~*", "+@all"}).first, 0);
  EXPECT_TRUE(open_client("rediss://odd:p%40ss%3Aw%2Frd@" + address, ca_only, 500, nullptr).ok());
}

TEST_F(SecureRedis, AWrongPasswordIsAClearErrorAtStart) {
  write_file(password_file_, "not-the-password");
  auto client = open_client("rediss://" + server_->address(), overrides(), 500, nullptr);
  ASSERT_FALSE(client.ok());
  EXPECT_NE(client.error().detail.find("AUTH refused"), std::string::npos) << client.error().detail;
  EXPECT_EQ(client.error().detail.find("not-the-password"), std::string::npos) << "a password in an error";
  // No credentials at all, where the default user is off: refused too (NOAUTH).
  SecurityOverrides none{.ca_file = certificates_.ca().string()};
  auto anonymous = open_client("rediss://" + server_->address(), none, 500, nullptr);
  ASSERT_FALSE(anonymous.ok());
  EXPECT_NE(anonymous.error().detail.find("NOAUTH"), std::string::npos) << anonymous.error().detail;
  // A password file that cannot be read.
  SecurityOverrides missing = overrides();
  missing.password_file = (dir_.path() / "absent").string();
  EXPECT_FALSE(open_client("rediss://" + server_->address(), missing, 500, nullptr).ok());
}

TEST_F(SecureRedis, ACertificateFromAnotherCaIsRefusedAtStart) {
  testing::TestCertificates other(dir_.path() / "other", "other");
  ASSERT_TRUE(other.make()) << other.error();
  SecurityOverrides wrong_ca = overrides();
  wrong_ca.ca_file = other.ca().string();
  auto client = open_client("rediss://" + server_->address(), wrong_ca, 500, nullptr);
  ASSERT_FALSE(client.ok());
  EXPECT_NE(client.error().detail.find("certificate refused"), std::string::npos) << client.error().detail;
  // A CA file that is not there stops the start as well.
  wrong_ca.ca_file = (dir_.path() / "absent.crt").string();
  auto absent = open_client("rediss://" + server_->address(), wrong_ca, 500, nullptr);
  ASSERT_FALSE(absent.ok());
  EXPECT_NE(absent.error().detail.find("CA file"), std::string::npos) << absent.error().detail;
}

TEST_F(SecureRedis, ACertificateForAnotherNameIsRefused) {
  testing::TestCertificates elsewhere(dir_.path() / "elsewhere", "elsewhere", "DNS:cache.example.com");
  ASSERT_TRUE(elsewhere.make()) << elsewhere.error();
  testing::Redis named(dir_.path() / "named", false,
                       testing::RedisSecurity{.certificate = elsewhere.certificate(),
                                              .key = elsewhere.key(),
                                              .ca = elsewhere.ca()});
  ASSERT_TRUE(named.start()) << named.error();
  SecurityOverrides trusted{.ca_file = elsewhere.ca().string()};
  for (const std::string host : {"127.0.0.1", "localhost"}) {
    auto client = open_client("rediss://" + host + ":" + std::to_string(named.port()), trusted, 500, nullptr);
    ASSERT_FALSE(client.ok()) << host;
    EXPECT_NE(client.error().detail.find("certificate refused"), std::string::npos) << client.error().detail;
  }
}

TEST_F(SecureRedis, APlainServerOrNoneAtAllIsAnOutageThatSaysWhy) {
  // A plain server reads a ClientHello as the start of an inline command and waits for its
  // line end: the handshake times out, as against a stalled TLS server. Neither can be told
  // from the other, so neither stops the start; the warning says which step timed out.
  testing::Redis plain(dir_.path() / "plain", false);
  ASSERT_TRUE(plain.start()) << plain.error();
  std::string said;
  auto client = open_client("rediss://" + plain.address(), overrides(), 300, &said);
  ASSERT_TRUE(client.ok()) << client.error().detail;
  EXPECT_NE(said.find("TLS handshake"), std::string::npos) << said;
  cache::RedisCache cache(*client.value(), cache::RedisCacheOptions{});
  cache.put_if_newer(account("nowhere", 1, 1));
  EXPECT_FALSE(cache.get("nowhere").has_value());
  // Nobody listening: the client is made, and says so.
  const uint16_t closed = testing::free_port();
  std::string unreachable;
  auto absent = open_client("rediss://127.0.0.1:" + std::to_string(closed), overrides(), 300, &unreachable);
  ASSERT_TRUE(absent.ok()) << absent.error().detail;
  EXPECT_NE(unreachable.find("cannot connect"), std::string::npos) << unreachable;
}

TEST_F(SecureRedis, ARotatedPasswordDegradesTheCacheUntilTheFileHoldsTheNewOne) {
  ClientOptions options = parse_url("rediss://" + server_->address()).value();
  apply(overrides(), options);
  options.open_ms = 200;
  Client client(options);
  cache::RedisCache cache(client, cache::RedisCacheOptions{});
  cache.put_if_newer(account("rotating", 1, 10));
  ASSERT_TRUE(cache.get("rotating").has_value());

  // The token is rotated at the server, and the pooled connections are closed (as a
  // managed service's failover or maintenance closes them).
  ASSERT_EQ(server_->cli({"ACL", "SETUSER", "balanced", "resetpass", ">n3w-token"}).first, 0);
  server_->set_password("n3w-token");  // redis-cli's own, from now on
  ASSERT_EQ(server_->cli({"CLIENT", "KILL", "USER", "balanced"}).first, 0);
  // Reads degrade to misses (the store answers them), and the refusals are counted.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (client.counters().auth_failures == 0 && std::chrono::steady_clock::now() < deadline) {
    EXPECT_FALSE(cache.get("rotating").has_value());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_GE(client.counters().auth_failures, 1u);
  EXPECT_GT(cache.stats().errors, 0u);

  // The Secret's file is updated in place: the next connection reads it, no restart.
  write_file(password_file_, "n3w-token\n");
  std::optional<core::Account> got;
  while (!got && std::chrono::steady_clock::now() < deadline + std::chrono::seconds(5)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    got = cache.get("rotating");
  }
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->balance, 10);
}

}  // namespace
}  // namespace balanced::redis
