// A stalled Redis (SIGSTOP: its sockets open, nothing answered) against the real binary
// with one HTTP thread: requests that do not need Redis are still answered while it is
// stopped, and those that do are answered, correctly, once it runs again.
#include <gtest/gtest.h>

#include "support/http_client.h"
#include "support/process.h"
#include "support/servers.h"

namespace balanced::testing {
namespace {

std::string transfer(const std::string& id, const std::string& from, const std::string& to,
                     int amount) {
  return R"({"transactionId":")" + id + R"(","sourceAccountNumber":")" + from +
         R"(","destinationAccountNumber":")" + to + R"(","amount":)" + std::to_string(amount) +
         "}";
}

TEST(RedisStall, HoldsNoHttpThreadAndNoCommitter) {
  TempDir dir;
  Redis redis(dir.path() / "redis", false);
  ASSERT_TRUE(redis.start()) << redis.error();
  // One HTTP thread, and a Redis timeout far longer than the clients wait: a worker held
  // by the stalled Redis would leave the clients below unanswered.
  BalancedServer server(dir.path(), {"--cache", "redis://" + redis.address(), "--threads", "1",
                                     "--redis-timeout-ms", "10000"});
  ASSERT_TRUE(server.start()) << server.log();
  HttpClient setup(server.port());
  for (const char* number : {"alice", "bob"}) {
    auto created = setup.request("POST", "/accounts",
                                 std::string(R"({"accountNumber":")") + number +
                                     R"(","initialBalance":1000,"currency":"USD"})");
    ASSERT_TRUE(created && created->status == 201) << server.log();
  }
  auto warm = setup.request("GET", "/accounts/alice/balance");  // now in Redis
  ASSERT_TRUE(warm && warm->status == 200);

  redis.process().pause();
  HttpClient cached(server.port(), 3000), writer(server.port(), 3000), other(server.port(), 3000);
  ASSERT_TRUE(cached.connect() && writer.connect() && other.connect());
  // Both wait on Redis: the read for its answer, the transfer for its write-through.
  ASSERT_TRUE(cached.send_raw("GET /accounts/alice/balance HTTP/1.1\r\nHost: x\r\n\r\n"));
  const std::string body = transfer("stall-1", "alice", "bob", 100);
  ASSERT_TRUE(writer.send_raw("POST /accounts/transactions HTTP/1.1\r\nHost: x\r\n"
                              "Content-Type: application/json\r\nContent-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n" + body));
  // Meanwhile the one HTTP thread answers everything that does not need Redis.
  for (int i = 0; i < 5; ++i) {
    auto health = other.request("GET", "/healthz");
    ASSERT_TRUE(health.has_value()) << "the HTTP thread is held by the stalled Redis";
    EXPECT_EQ(health->status, 200);
    auto strong = other.request("GET", "/accounts/bob/balance?consistency=strong");
    ASSERT_TRUE(strong.has_value()) << "the HTTP thread is held by the stalled Redis";
    EXPECT_EQ(strong->status, 200);
    // Before or after the transfer commits: its answer waits for Redis, its commit does not.
    EXPECT_TRUE(strong->body.find("\"balance\":1000") != std::string::npos ||
                strong->body.find("\"balance\":1100") != std::string::npos)
        << strong->body;
  }
  // The committer is not held either: another transfer is applied (durable, readable
  // with consistency=strong) while the first one's answer still waits for Redis.
  const std::string second = transfer("stall-2", "bob", "alice", 1);
  ASSERT_TRUE(other.send_raw("POST /accounts/transactions HTTP/1.1\r\nHost: x\r\n"
                             "Content-Type: application/json\r\nContent-Length: " +
                             std::to_string(second.size()) + "\r\n\r\n" + second));
  HttpClient strong_reader(server.port(), 3000);
  std::string seen;
  for (int i = 0; i < 100 && seen.find("\"balance\":1099") == std::string::npos; ++i) {
    auto strong = strong_reader.request("GET", "/accounts/bob/balance?consistency=strong");
    ASSERT_TRUE(strong.has_value());
    seen = strong->body;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_NE(seen.find("\"balance\":1099"), std::string::npos) << seen;  // +100 -1

  redis.process().resume();
  auto read = cached.read_response();
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->status, 200);
  auto committed = writer.read_response();
  ASSERT_TRUE(committed.has_value());
  EXPECT_EQ(committed->status, 201) << committed->body;
  auto committed2 = other.read_response();
  ASSERT_TRUE(committed2.has_value());
  EXPECT_EQ(committed2->status, 201) << committed2->body;
  // Answered only once written through: a cached read now sees both transfers.
  auto after = setup.request("GET", "/accounts/alice/balance");
  ASSERT_TRUE(after.has_value());
  EXPECT_NE(after->body.find("\"balance\":901"), std::string::npos) << after->body;
  EXPECT_EQ(server.process().terminate(), 0) << server.log();
}

TEST(RedisStall, ADrainAnswersWhatWaitsOnRedis) {
  TempDir dir;
  Redis redis(dir.path() / "redis", false);
  ASSERT_TRUE(redis.start()) << redis.error();
  BalancedServer server(dir.path(), {"--cache", "redis://" + redis.address(), "--threads", "1",
                                     "--redis-timeout-ms", "10000", "--drain-grace-ms", "10000"});
  ASSERT_TRUE(server.start()) << server.log();
  HttpClient setup(server.port());
  auto created = setup.request("POST", "/accounts", R"({"accountNumber":"alice","initialBalance":7,"currency":"USD"})");
  ASSERT_TRUE(created && created->status == 201) << server.log();

  redis.process().pause();
  HttpClient waiting(server.port(), 5000);
  ASSERT_TRUE(waiting.connect());
  ASSERT_TRUE(waiting.send_raw("GET /accounts/alice/balance HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  // SIGTERM while the read waits on Redis, with nothing else for the HTTP thread to do:
  // the drain keeps that thread until the answer is written.
  server.process().signal(SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  redis.process().resume();
  auto answered = waiting.read_response();
  ASSERT_TRUE(answered.has_value()) << server.log();
  EXPECT_EQ(answered->status, 200);
  EXPECT_NE(answered->body.find("\"balance\":7"), std::string::npos) << answered->body;
  EXPECT_EQ(server.process().wait(20000), 0) << server.log();
}

}  // namespace
}  // namespace balanced::testing
