// The change feed's relays (DESIGN.md section 11) against a real balanced: the webhook
// relay delivers every event, in order and signed, to a receiver that fails for a while,
// and after a kill -9 resumes from the position it stored (at least once: repeats allowed,
// losses not).
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <boost/json.hpp>
#include <chrono>
#include <fstream>
#include <set>
#include <thread>

#include "support/http_client.h"
#include "support/process.h"
#include "support/rabbitmq_server.h"
#include "support/servers.h"
#include "support/webhook_receiver.h"

namespace balanced::testing {
namespace {

namespace json = boost::json;

std::string hex_hmac(const std::string& key, const std::string& text) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(text.data()),
       text.size(), mac, &length);
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out += digits[mac[i] >> 4];
    out += digits[mac[i] & 15];
  }
  return out;
}

// The ids the receiver accepted (2xx), in arrival order.
std::vector<int64_t> accepted_ids(WebhookReceiver& receiver) {
  std::vector<int64_t> ids;
  for (const auto& hook : receiver.received()) {
    if (hook.status >= 200 && hook.status < 300) ids.push_back(json::parse(hook.body).at("id").as_int64());
  }
  return ids;
}

// Waits up to 60 s for the receiver to have accepted event `id`.
bool wait_for_event(WebhookReceiver& receiver, int64_t id) {
  for (int i = 0; i < 600; ++i) {
    const auto ids = accepted_ids(receiver);
    if (std::find(ids.begin(), ids.end(), id) != ids.end()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

void transfers(HttpClient& client, const std::string& prefix, int count, const std::string& from = "wh-a",
               const std::string& to = "wh-b") {
  for (int i = 0; i < count; ++i) {
    auto r = client.request("POST", "/accounts/transactions",
                            "{\"transactionId\":\"" + prefix + std::to_string(i) +
                                "\",\"sourceAccountNumber\":\"" + from + "\",\"destinationAccountNumber\":\"" + to +
                                "\",\"amount\":1}");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 201) << r->body;
  }
}

TEST(WebhookRelay, EveryEventArrivesInOrderSignedThroughFailuresAndAKill) {
  TempDir dir;
  // The receiver is down for its first 5 requests: the relay backs off and retries. It
  // keeps the connection open after two answers in three, and closes it after the third:
  // the relay reuses a kept connection and makes a new one when it is closed.
  WebhookReceiver receiver([](size_t n, const ReceivedHook&) {
    return HookAnswer{.status = n < 5 ? 503 : 200, .keep_open = n % 3 != 2};
  });
  const auto secrets = dir.path() / "webhook-secret";
  std::ofstream(secrets) << "old-secret\nnew-secret\n";
  BalancedServer server(dir.path(), {"--webhook-url", "http://127.0.0.1:" + std::to_string(receiver.port()) + "/hooks",
                                     "--webhook-secret-file", secrets.string()});
  ASSERT_TRUE(server.start()) << server.log();
  HttpClient client(server.port());
  ASSERT_EQ(client.request("POST", "/accounts", R"({"accountNumber":"wh-a","initialBalance":1000})")->status, 201);
  ASSERT_EQ(client.request("POST", "/accounts", R"({"accountNumber":"wh-b"})")->status, 201);
  ASSERT_NO_FATAL_FAILURE(transfers(client, "wh-1-", 20));  // events 4..23
  ASSERT_TRUE(wait_for_event(receiver, 23)) << server.log();
  auto ids = accepted_ids(receiver);
  ASSERT_EQ(ids.size(), 23u);
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(ids[i], static_cast<int64_t>(i + 1));
  // Signed with both secrets, over "t.body"; the event id in a header of its own.
  const int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  for (const auto& hook : receiver.received()) {
    const std::string signature = hook.headers.at("balanced-signature");
    ASSERT_TRUE(signature.starts_with("t=")) << signature;
    const std::string stamp = signature.substr(2, signature.find(',') - 2);
    EXPECT_LE(std::abs(now_s - std::stoll(stamp)), 120);
    EXPECT_EQ(signature, "t=" + stamp + ",v1=" + hex_hmac("old-secret", stamp + "." + hook.body) +
                             ",v1=" + hex_hmac("new-secret", stamp + "." + hook.body));
    EXPECT_EQ(hook.headers.at("balanced-event-id"), std::to_string(json::parse(hook.body).at("id").as_int64()));
    EXPECT_EQ(hook.headers.at("content-type"), "application/json");
  }
  EXPECT_EQ(receiver.received().front().status, 503);  // it did fail, and the relay came back
  EXPECT_LT(receiver.connections(), static_cast<int>(receiver.received().size()) / 2 + 2);  // reused

  // Killed mid-stream, restarted on the same ledger: resumes from the stored position.
  ASSERT_NO_FATAL_FAILURE(transfers(client, "wh-2-", 20));  // events 24..43
  server.process().kill_hard();
  ASSERT_TRUE(server.start()) << server.log();
  HttpClient again(server.port());
  ASSERT_NO_FATAL_FAILURE(transfers(again, "wh-3-", 10));  // events 44..53
  ASSERT_TRUE(wait_for_event(receiver, 53)) << server.log();
  ids = accepted_ids(receiver);
  std::set<int64_t> seen;
  int64_t highest = 0;
  for (const int64_t id : ids) {
    // In order: a repeat (delivered, not yet confirmed at the kill) may come again, a
    // new id is always the next one.
    if (seen.insert(id).second) {
      EXPECT_EQ(id, highest + 1);
      highest = id;
    }
  }
  EXPECT_EQ(highest, 53);
  EXPECT_LE(ids.size(), 53u + 100u);  // at most one round (100 events) again
  auto metrics = again.request("GET", "/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("balanced_event_relay_position{relay=\"webhook\"}"), std::string::npos);
  EXPECT_EQ(server.process().terminate(), 0) << server.log();
}

// Takes messages from `queue` until one with message_id `last` came (at most 60 s).
std::vector<AmqpMessage> consume_through(RabbitMqServer& broker, const std::string& queue, int64_t last,
                                         std::vector<AmqpMessage> so_far = {}) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  auto has_last = [&] {
    return std::any_of(so_far.begin(), so_far.end(),
                       [&](const AmqpMessage& m) { return m.message_id == std::to_string(last); });
  };
  while (!has_last() && std::chrono::steady_clock::now() < deadline) {
    for (auto& message : broker.get(queue, 1000, 500)) so_far.push_back(std::move(message));
  }
  return so_far;
}

TEST(AmqpRelay, AConsumerSeesEveryEventOnceInOrderThroughAKillAndABrokerRestart) {
  TempDir dir;
  RabbitMqServer broker(dir.path());
  ASSERT_TRUE(broker.start()) << broker.error();
  ASSERT_TRUE(broker.declare_bound_queue("ledger-feed", "balanced.events", "#"));
  const auto password = dir.path() / "amqp-password";
  std::ofstream(password) << broker.password() << "\n";
  BalancedServer server(dir.path(), {"--events-amqp", broker.url(), "--events-amqp-password-file", password.string(),
                                     "--events-amqp-timeout-ms", "2000"});
  ASSERT_TRUE(server.start()) << server.log();
  HttpClient client(server.port());
  ASSERT_EQ(client.request("POST", "/accounts", R"({"accountNumber":"mq-a","initialBalance":1000})")->status, 201);
  ASSERT_EQ(client.request("POST", "/accounts", R"({"accountNumber":"mq-b"})")->status, 201);
  ASSERT_NO_FATAL_FAILURE(transfers(client, "mq-1-", 25, "mq-a", "mq-b"));  // events 4..28
  // Killed while it relays; restarted on the same ledger.
  server.process().kill_hard();
  ASSERT_TRUE(server.start()) << server.log();
  HttpClient again(server.port());
  ASSERT_NO_FATAL_FAILURE(transfers(again, "mq-2-", 10, "mq-a", "mq-b"));  // events 29..38
  auto messages = consume_through(broker, "ledger-feed", 38);
  // The broker goes down and comes back: what committed meanwhile waits in the feed.
  broker.stop();
  ASSERT_NO_FATAL_FAILURE(transfers(again, "mq-3-", 10, "mq-a", "mq-b"));  // events 39..48
  ASSERT_TRUE(broker.start()) << broker.error();
  messages = consume_through(broker, "ledger-feed", 48, std::move(messages));
  std::set<int64_t> seen;
  int64_t highest = 0;
  for (const auto& message : messages) {
    const json::value event = json::parse(message.body);
    const int64_t id = event.at("id").as_int64();
    EXPECT_EQ(message.message_id, std::to_string(id));
    EXPECT_EQ(message.type, event.at("type").as_string());
    EXPECT_EQ(message.routing_key, message.type);
    EXPECT_EQ(message.exchange, "balanced.events");
    EXPECT_EQ(message.content_type, "application/json");
    EXPECT_EQ(message.delivery_mode, 2);  // persistent
    if (seen.insert(id).second) {  // a repeat is allowed (at least once); a new id is the next one
      EXPECT_EQ(id, highest + 1) << "after " << highest;
      highest = id;
    }
  }
  EXPECT_EQ(highest, 48) << server.log();
  EXPECT_EQ(server.process().terminate(), 0) << server.log();
}

TEST(WebhookRelay, ABadWebhookSettingIsRefusedAtStart) {
  TempDir dir;
  const auto secrets = dir.path() / "empty-secret";
  std::ofstream(secrets) << "\n";
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"--webhook-url", "http://example.com/hooks", "--webhook-secret-file", secrets.string()},
       "plain http only to a loopback host"},
      {{"--webhook-url", "http://127.0.0.1:9/hooks", "--webhook-secret-file", (dir.path() / "nope").string()},
       "cannot be read"},
      {{"--webhook-url", "http://127.0.0.1:9/hooks", "--webhook-secret-file", secrets.string()}, "no secret"},
      {{"--webhook-url", "http://127.0.0.1:9/hooks"}, "--webhook-url and --webhook-secret-file go together"}};
  for (const auto& [args, why] : cases) {
    BalancedServer server(dir.path(), args);
    EXPECT_FALSE(server.start()) << why;
    EXPECT_NE(server.process().wait(10000), 0);
    EXPECT_NE(server.log().find(why), std::string::npos) << server.log();
  }
}

}  // namespace
}  // namespace balanced::testing
