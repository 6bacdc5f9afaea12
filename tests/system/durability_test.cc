// The invariants under concurrency and crashes, against the real binaries:
// conservation, no balance below its limit, every acknowledged transfer present exactly
// once after kill -9, and `balancectl verify` clean.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <functional>
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

// Random transfers among `accounts` from `threads` clients, `count` each. Once `going` is
// set the server may go away (a kill or a drain): a client then stops at its first request
// without an answer (its outcome unknown, not acknowledged); before that, every request must
// be answered. `acknowledged`, when given, counts the 2xx answers as they come. Returns the
// acknowledged transfers.
std::vector<Acked> drive(uint16_t port, int threads, int count, int accounts, int64_t amount_max,
                         const std::string& prefix, std::atomic<bool>* going = nullptr,
                         std::atomic<int64_t>* acknowledged = nullptr) {
  std::vector<Acked> acked;
  std::mutex mutex;
  std::vector<std::thread> clients;
  for (int t = 0; t < threads; ++t) {
    clients.emplace_back([&, t] {
      HttpClient client(port, 5000);
      std::mt19937 random(static_cast<unsigned>(t * 977 + 3));
      for (int i = 0; i < count; ++i) {
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
          if (going != nullptr && going->load()) break;  // the server is going: unknown, not acknowledged
          ADD_FAILURE() << "no answer for " << id << " while the server was up";
          break;
        }
        if (r->status == 201 || r->status == 200) {
          std::lock_guard lock(mutex);
          acked.push_back({id, amount});
          if (acknowledged != nullptr) acknowledged->fetch_add(1);
        } else {
          EXPECT_TRUE(r->status == 422 || r->status == 503) << r->status << " " << r->body;
        }
      }
    });
  }
  for (auto& c : clients) c.join();
  return acked;
}

// Waits until `counter` reaches `target` (at most 60 s); false if it did not.
bool wait_for_count(const std::atomic<int64_t>& counter, int64_t target) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (counter.load() < target) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
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
    std::atomic<bool> going{false};
    std::atomic<int64_t> acknowledged{0};
    std::vector<Acked> acked;
    std::thread load([&] {
      acked = drive(server.port(), 8, 1'000'000, kAccounts, 100, "k" + std::to_string(round) + "-", &going,
                    &acknowledged);
    });
    // Killed at a later point each round: after 300, 600, 900 and 1,200 acknowledgements.
    const bool progressed = wait_for_count(acknowledged, 300 * (round + 1));
    going = true;
    server.process().kill_hard();
    load.join();
    ASSERT_TRUE(progressed) << "round " << round << ": only " << acknowledged << " acknowledged in 60 s";
    EXPECT_GE(acked.size(), static_cast<size_t>(300 * (round + 1))) << "round " << round;
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
  std::atomic<bool> going{false};
  std::atomic<int64_t> acknowledged{0};
  std::vector<Acked> acked;
  std::thread load([&] { acked = drive(server.port(), 4, 1'000'000, 4, 10, "s", &going, &acknowledged); });
  const bool progressed = wait_for_count(acknowledged, 500);
  going = true;
  EXPECT_EQ(server.process().terminate(), 0) << server.log();
  load.join();
  ASSERT_TRUE(progressed) << "only " << acknowledged << " acknowledged in 60 s";
  EXPECT_GE(acked.size(), 500u);
  ASSERT_TRUE(server.start()) << server.log();
  expect_all_present(server.port(), acked);
  EXPECT_EQ(server.process().terminate(), 0);
  expect_verify_clean(server.db(), dir.path());
}

// --drain-delay-ms: on SIGTERM /readyz fails at once, and for the delay new connections are
// still accepted and served (the endpoint's removal has not reached every load balancer yet);
// then the listener closes, and the process drains and exits 0.
TEST(Durability, ADrainDelayKeepsServingWhileReadinessIsOff) {
  TempDir dir;
  BalancedServer server(dir.path(), {"--drain-delay-ms", "3000"});
  ASSERT_TRUE(server.start()) << server.log();
  create_accounts(server.port(), 2, 1000);
  {
    HttpClient before(server.port());
    ASSERT_EQ(before.request("GET", "/readyz")->status, 200);
  }
  const auto signalled = std::chrono::steady_clock::now();
  server.process().signal(SIGTERM);
  // Readiness turns off within moments of the signal.
  int ready_status = 200;
  while (ready_status == 200 && std::chrono::steady_clock::now() - signalled < std::chrono::seconds(2)) {
    HttpClient probe(server.port());
    auto r = probe.request("GET", "/readyz");
    ASSERT_TRUE(r) << "no answer within the drain delay";
    ready_status = r->status;
  }
  EXPECT_EQ(ready_status, 503);
  // A new connection, inside the delay, is still served: a transfer commits.
  HttpClient late(server.port());
  auto transfer = late.request("POST", "/accounts/transactions",
                               "{\"transactionId\":\"late-1\",\"sourceAccountNumber\":\"acc0\","
                               "\"destinationAccountNumber\":\"acc1\",\"amount\":5}");
  ASSERT_TRUE(transfer) << "a request inside the drain delay got no answer";
  EXPECT_EQ(transfer->status, 201) << transfer->body;
  EXPECT_LT(std::chrono::steady_clock::now() - signalled, std::chrono::milliseconds(3000))
      << "the checks above took longer than the delay: the test proves nothing";
  EXPECT_EQ(server.process().wait(30000), 0) << server.log();
  EXPECT_GE(std::chrono::steady_clock::now() - signalled, std::chrono::milliseconds(3000))
      << "exited before its drain delay";
  ASSERT_TRUE(server.start()) << server.log();
  expect_all_present(server.port(), {{"late-1", 5}});
  EXPECT_EQ(server.process().terminate(), 0);
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

namespace balanced::testing {
namespace {

// POSTs from `threads` clients at once, `count` each: body(thread, i) to target(thread, i).
// Returns each request's status (0: no answer, the server was killed meanwhile).
std::vector<std::vector<int>> race(uint16_t port, int threads, int count,
                                   const std::function<std::string(int, int)>& target,
                                   const std::function<std::string(int, int)>& body) {
  std::vector<std::vector<int>> statuses(static_cast<size_t>(threads), std::vector<int>(static_cast<size_t>(count)));
  std::vector<std::thread> clients;
  for (int t = 0; t < threads; ++t) {
    clients.emplace_back([&, t] {
      HttpClient client(port, 5000);
      for (int i = 0; i < count; ++i) {
        auto r = client.request("POST", target(t, i), body(t, i), {{"Content-Type", "application/json"}});
        statuses[static_cast<size_t>(t)][static_cast<size_t>(i)] = r ? r->status : 0;
        if (!r) break;
      }
    });
  }
  for (auto& c : clients) c.join();
  return statuses;
}

json::object get(uint16_t port, const std::string& target) {
  HttpClient client(port);
  auto r = client.request("GET", target);
  return r ? object(r->body) : json::object{};
}

// k holds on one balance; captures, voids and the sweeper's expiries racing for the same
// holds; partial refunds racing for one transfer; a kill -9 in the middle of each race.
// Every hold ends at most once, as the answer acknowledged said; refunds never exceed the
// transfer; pending amounts are the pending holds'; verify is clean.
TEST(Durability, HoldsAndRefundsRacingAcrossAKillNineEndOnce) {
  TempDir dir;
  BalancedServer server(dir.path(), {"--singleton-interval-ms", "100"});
  ASSERT_TRUE(server.start()) << server.log();
  HttpClient setup(server.port());
  for (const auto& [number, initial] : std::vector<std::pair<std::string, int>>{{"payer", 1000}, {"shop", 0}}) {
    ASSERT_EQ(setup.request("POST", "/accounts",
                            "{\"accountNumber\":\"" + number + "\",\"initialBalance\":" + std::to_string(initial) + "}")
                  ->status,
              201);
  }
  // 1. 160 holds of 10 on a balance of 1,000: exactly 100 placed, whatever the order.
  const auto hold_id = [](int t, int i) { return "h" + std::to_string(t) + "-" + std::to_string(i); };
  auto placed = race(server.port(), 8, 20, [](int, int) { return std::string("/holds"); }, [&](int t, int i) {
    // One in ten lives 1 s, for the sweeper.
    return "{\"holdId\":\"" + hold_id(t, i) +
           "\",\"sourceAccountNumber\":\"payer\",\"destinationAccountNumber\":\"shop\",\"amount\":10" +
           (i % 10 == 0 ? ",\"expiresInSeconds\":1" : "") + "}";
  });
  std::vector<std::string> holds;
  int refused = 0;
  for (int t = 0; t < 8; ++t) {
    for (int i = 0; i < 20; ++i) {
      const int status = placed[static_cast<size_t>(t)][static_cast<size_t>(i)];
      ASSERT_TRUE(status == 201 || status == 422) << status;
      if (status == 201) holds.push_back(hold_id(t, i));
      refused += status == 422;
    }
  }
  const auto placed_at = std::chrono::steady_clock::now();
  EXPECT_EQ(holds.size(), 100u);
  EXPECT_EQ(refused, 60);
  EXPECT_EQ(get(server.port(), "/accounts/payer/balance")["available"], json::value(0));

  // 2. For every hold a capture and a void race (two clients each side); killed -9 once
  // a third of the answers are in.
  std::atomic<int> answered{0};
  std::vector<std::vector<int>> settled;
  std::thread settling([&] {
    settled = race(server.port(), 4, static_cast<int>(holds.size()),
                   [&](int t, int i) {
                     answered.fetch_add(1);
                     return "/holds/" + holds[static_cast<size_t>(i)] + (t % 2 ? "/void" : "/capture");
                   },
                   [&](int t, int i) {
                     const std::string& h = holds[static_cast<size_t>(i)];
                     return t % 2 ? "{\"voidId\":\"v-" + h + "\"}" : "{\"captureId\":\"c-" + h + "\",\"amount\":7}";
                   });
  });
  while (answered.load() < static_cast<int>(holds.size()) * 4 / 3) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  server.process().kill_hard();
  settling.join();
  ASSERT_TRUE(server.start()) << server.log();
  // Each hold: its acknowledged winner is what it says; never both won.
  HttpClient client(server.port());
  int captured = 0;
  for (size_t i = 0; i < holds.size(); ++i) {
    bool capture_won = false, void_won = false;
    for (int t = 0; t < 4; ++t) {
      const int status = settled[static_cast<size_t>(t)][i];
      EXPECT_TRUE(status == 0 || status == 201 || status == 200 || status == 409) << status;
      if (status == 201 || status == 200) (t % 2 ? void_won : capture_won) = true;
    }
    EXPECT_FALSE(capture_won && void_won) << holds[i];
    auto h = get(server.port(), "/holds/" + holds[i]);
    const json::value status = h["status"];
    if (capture_won) EXPECT_EQ(status, json::value("captured")) << holds[i];
    if (void_won) EXPECT_EQ(status, json::value("voided")) << holds[i];
    if (status == json::value("captured")) {
      ++captured;
      EXPECT_EQ(h["settledBy"], json::value("c-" + holds[i]));
    }
  }
  // Every overdue hold expires after the restart (the sweeper, every 100 ms here): then
  // the payer's pending debits are the holds still pending, 10 each.
  std::this_thread::sleep_until(placed_at + std::chrono::milliseconds(1100));
  const auto still_pending = [&] {
    int64_t sum = 0;
    for (const auto& h : holds) sum += get(server.port(), "/holds/" + h)["status"] == json::value("pending") ? 10 : 0;
    return sum;
  };
  int64_t expected_pending = still_pending();
  for (int i = 0; i < 100 && get(server.port(), "/accounts/payer/balance")["pendingDebits"].as_int64() != expected_pending; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    expected_pending = still_pending();
  }
  EXPECT_EQ(get(server.port(), "/accounts/payer/balance")["pendingDebits"].as_int64(), expected_pending);
  int expired = 0;
  for (const auto& h : holds) {
    auto one = get(server.port(), "/holds/" + h);
    if (one["status"] == json::value("expired")) {
      ++expired;
      EXPECT_EQ(one["settledBy"], json::value("$expire:" + h)) << h;  // recorded, not only shown
    }
  }
  EXPECT_GT(expired, 0);
  EXPECT_EQ(get(server.port(), "/accounts/shop/balance")["balance"].as_int64(), 7 * captured);

  // 3. 160 refunds of 1 race for one transfer of 100; killed -9 midway, then retried.
  ASSERT_EQ(client.request("POST", "/accounts/shop/deposits", R"({"transactionId":"float","amount":1000})")->status, 201);
  ASSERT_EQ(client.request("POST", "/accounts/transactions",
                           R"({"transactionId":"paid","sourceAccountNumber":"shop","destinationAccountNumber":"payer","amount":100})")
                ->status,
            201);
  const auto refund_id = [](int t, int i) { return "r" + std::to_string(t) + "-" + std::to_string(i); };
  std::atomic<int> refunds_sent{0};
  std::vector<std::vector<int>> refunded;
  std::thread refunding([&] {
    refunded = race(server.port(), 8, 20,
                    [&](int, int) {
                      refunds_sent.fetch_add(1);
                      return std::string("/transactions/paid/refunds");
                    },
                    [&](int t, int i) { return "{\"refundId\":\"" + refund_id(t, i) + "\",\"amount\":1}"; });
  });
  while (refunds_sent.load() < 60) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  server.process().kill_hard();
  refunding.join();
  ASSERT_TRUE(server.start()) << server.log();
  // Retry every refund whose answer was lost, as a client would: same id, same body.
  for (int t = 0; t < 8; ++t) {
    for (int i = 0; i < 20; ++i) {
      int& status = refunded[static_cast<size_t>(t)][static_cast<size_t>(i)];
      if (status != 0) continue;
      auto again = HttpClient(server.port()).request("POST", "/transactions/paid/refunds",
                                                     "{\"refundId\":\"" + refund_id(t, i) + "\",\"amount\":1}");
      ASSERT_TRUE(again);
      status = again->status;
    }
  }
  int refunds = 0;
  for (const auto& thread : refunded) {
    for (const int status : thread) {
      EXPECT_TRUE(status == 200 || status == 201 || status == 422) << status;
      refunds += status == 200 || status == 201;
    }
  }
  EXPECT_EQ(refunds, 100);  // every unit once, never more
  EXPECT_EQ(get(server.port(), "/transactions/paid")["refundedAmount"], json::value(100));
  EXPECT_EQ(server.process().terminate(), 0);
  expect_verify_clean(server.db(), dir.path());
}

}  // namespace
}  // namespace balanced::testing
