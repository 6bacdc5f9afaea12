// The invariants under concurrency and crashes, against the real binaries:
// conservation, no balance below its limit, every acknowledged transfer present exactly
// once after kill -9, and `balancectl verify` clean.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <mutex>
#include <random>
#include <thread>

#include "support/http_client.h"
#include "support/process.h"

namespace balanced::testing {
namespace {

namespace json = boost::json;

struct Acked {
  std::string id;
  int64_t amount;
};

json::object object(const std::string& body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  return !ec && v.is_object() ? v.as_object() : json::object{};
}

void create_accounts(uint16_t port, int count, int64_t initial) {
  HttpClient client(port);
  for (int i = 0; i < count; ++i) {
    auto r = client.request("POST", "/accounts",
                            "{\"accountNumber\":\"acc" + std::to_string(i) +
                                "\",\"initialBalance\":" + std::to_string(initial) + "}");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 201) << r->body;
  }
}

// Random transfers among `accounts` from `threads` clients until `stop` or `count` each.
// Returns the acknowledged ones.
std::vector<Acked> drive(uint16_t port, int threads, int count, int accounts, int64_t amount_max,
                         const std::string& prefix, std::atomic<bool>* stop = nullptr) {
  std::vector<Acked> acked;
  std::mutex mutex;
  std::vector<std::thread> clients;
  for (int t = 0; t < threads; ++t) {
    clients.emplace_back([&, t] {
      HttpClient client(port, 5000);
      std::mt19937 random(static_cast<unsigned>(t * 977 + 3));
      for (int i = 0; i < count && !(stop && stop->load()); ++i) {
        const int from = static_cast<int>(random() % accounts);
        int to = static_cast<int>(random() % accounts);
        if (to == from) to = (to + 1) % accounts;
        const int64_t amount = 1 + static_cast<int64_t>(random() % amount_max);
        const std::string id = prefix + std::to_string(t) + "-" + std::to_string(i);
        auto r = client.request("POST", "/accounts/transactions",
                                "{\"transactionId\":\"" + id + "\",\"sourceAccountNumber\":\"acc" +
                                    std::to_string(from) + "\",\"destinationAccountNumber\":\"acc" +
                                    std::to_string(to) + "\",\"amount\":" + std::to_string(amount) + "}");
        if (!r) {
          if (stop) break;  // the server is gone: the outcome is unknown, not acknowledged
          ADD_FAILURE() << "no answer for " << id;
          continue;
        }
        if (r->status == 201 || r->status == 200) {
          std::lock_guard lock(mutex);
          acked.push_back({id, amount});
        } else {
          EXPECT_TRUE(r->status == 422 || r->status == 503) << r->status << " " << r->body;
        }
      }
    });
  }
  for (auto& c : clients) c.join();
  return acked;
}

// Every acknowledged transfer is there, committed, with its amount.
void expect_all_present(uint16_t port, const std::vector<Acked>& acked) {
  HttpClient client(port);
  for (const auto& a : acked) {
    auto r = client.request("GET", "/transactions/" + a.id);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << "acknowledged " << a.id << " is missing";
    auto o = object(r->body);
    EXPECT_EQ(o["status"], "committed") << a.id;
    EXPECT_EQ(o["amount"], a.amount) << a.id;
  }
}

// Sum and floor over all client accounts, read through the API.
void expect_conserved(uint16_t port, int accounts, int64_t initial) {
  HttpClient client(port);
  int64_t sum = 0;
  for (int i = 0; i < accounts; ++i) {
    auto r = client.request("GET", "/accounts/acc" + std::to_string(i) + "/balance?consistency=strong");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
    const int64_t balance = object(r->body)["balance"].as_int64();
    EXPECT_GE(balance, 0) << "acc" << i;
    sum += balance;
  }
  EXPECT_EQ(sum, initial * accounts);
}

void expect_verify_clean(const std::string& db, const std::filesystem::path& dir) {
  auto [code, output] = run_command({BALANCECTL_BINARY, "verify", "--db", db}, dir / "verify.log");
  EXPECT_EQ(code, 0) << output;
  EXPECT_NE(output.find("verify: clean"), std::string::npos) << output;
}

TEST(Durability, ConcurrentTransfersKeepEveryInvariant) {
  TempDir dir;
  BalancedServer server(dir.path());
  ASSERT_TRUE(server.start()) << server.log();
  constexpr int kAccounts = 5;
  constexpr int64_t kInitial = 10'000;
  create_accounts(server.port(), kAccounts, kInitial);
  // Amounts up to half a balance: many transfers are refused for funds, under contention.
  auto acked = drive(server.port(), 16, 250, kAccounts, kInitial / 2, "c");
  EXPECT_GT(acked.size(), 100u);
  expect_all_present(server.port(), acked);
  expect_conserved(server.port(), kAccounts, kInitial);
  EXPECT_EQ(server.process().terminate(), 0) << server.log();
  expect_verify_clean(server.db(), dir.path());
}

TEST(Durability, KillNineUnderLoadLosesNothingAcknowledged) {
  TempDir dir;
  BalancedServer server(dir.path());
  constexpr int kAccounts = 20;
  constexpr int64_t kInitial = 1'000'000;
  std::vector<Acked> all_acked;
  for (int round = 0; round < 4; ++round) {
    ASSERT_TRUE(server.start()) << server.log();
    if (round == 0) create_accounts(server.port(), kAccounts, kInitial);
    // Everything acknowledged before this crash must have survived the previous ones.
    expect_all_present(server.port(), all_acked);
    std::atomic<bool> stop{false};
    std::vector<Acked> acked;
    std::thread load([&] {
      acked = drive(server.port(), 8, 1'000'000, kAccounts, 100, "k" + std::to_string(round) + "-", &stop);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(800 + 300 * round));
    server.process().kill_hard();
    stop = true;
    load.join();
    EXPECT_GT(acked.size(), 0u) << "round " << round;
    all_acked.insert(all_acked.end(), acked.begin(), acked.end());
  }
  ASSERT_TRUE(server.start()) << server.log();
  expect_all_present(server.port(), all_acked);
  expect_conserved(server.port(), kAccounts, kInitial);
  // A retry of an acknowledged id after the crashes is a replay, not a second transfer.
  HttpClient client(server.port());
  const auto& first = all_acked.front();
  auto original = object(client.request("GET", "/transactions/" + first.id)->body);
  auto replay = client.request(
      "POST", "/accounts/transactions",
      "{\"transactionId\":\"" + first.id + "\",\"sourceAccountNumber\":" +
          json::serialize(original["sourceAccountNumber"]) + ",\"destinationAccountNumber\":" +
          json::serialize(original["destinationAccountNumber"]) + ",\"amount\":" +
          std::to_string(first.amount) + "}");
  ASSERT_TRUE(replay);
  EXPECT_EQ(replay->status, 200) << replay->body;
  EXPECT_EQ(server.process().terminate(), 0);
  expect_verify_clean(server.db(), dir.path());
}

TEST(Durability, SigtermDrainsAndExitsZero) {
  TempDir dir;
  BalancedServer server(dir.path());
  ASSERT_TRUE(server.start()) << server.log();
  create_accounts(server.port(), 4, 1000);
  std::atomic<bool> stop{false};
  std::vector<Acked> acked;
  std::thread load([&] { acked = drive(server.port(), 4, 1'000'000, 4, 10, "s", &stop); });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(server.process().terminate(), 0) << server.log();
  stop = true;
  load.join();
  ASSERT_TRUE(server.start()) << server.log();
  expect_all_present(server.port(), acked);
  EXPECT_EQ(server.process().terminate(), 0);
  expect_verify_clean(server.db(), dir.path());
}

}  // namespace
}  // namespace balanced::testing

namespace balanced::testing {
namespace {

TEST(Backpressure, FullQueueAnswers503OverloadedAtOnce) {
  TempDir dir;
  BalancedServer server(dir.path(), {"--queue-depth-max", "1", "--batch-operations-max", "1"});
  ASSERT_TRUE(server.start()) << server.log();
  create_accounts(server.port(), 2, 1'000'000);
  std::atomic<int> overloaded{0};
  std::atomic<int> unexpected{0};
  // Bounded: rounds of 32 simultaneous clients until the queue has overflowed once.
  for (int round = 0; round < 50 && overloaded == 0; ++round) {
    std::vector<std::thread> clients;
    for (int t = 0; t < 32; ++t) {
      clients.emplace_back([&, t] {
        HttpClient client(server.port());
        auto r = client.request("POST", "/accounts/transactions",
                                "{\"transactionId\":\"bp" + std::to_string(round) + "-" +
                                    std::to_string(t) +
                                    "\",\"sourceAccountNumber\":\"acc0\","
                                    "\"destinationAccountNumber\":\"acc1\",\"amount\":1}");
        if (!r) {
          ++unexpected;
        } else if (r->status == 503) {
          auto o = object(r->body);
          if (o["code"] == "overloaded" && r->header("retry-after") == "1") {
            ++overloaded;
          } else {
            ++unexpected;
          }
        } else if (r->status != 201) {
          ++unexpected;
        }
      });
    }
    for (auto& c : clients) c.join();
  }
  EXPECT_GT(overloaded, 0);
  EXPECT_EQ(unexpected, 0);
  EXPECT_EQ(server.process().terminate(), 0);
  expect_verify_clean(server.db(), dir.path());
}

}  // namespace
}  // namespace balanced::testing
