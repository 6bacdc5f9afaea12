// The production topology on one machine: three balanced replicas on one MariaDB and one
// 3-master Redis Cluster, all real processes. `balancectl bench` spreads transfers and
// balance reads (hot-account skew) over the three while the test kills a replica with
// -9, restarts MariaDB and kills a Redis master. Afterwards every acknowledged transfer
// is present exactly once, `balancectl verify` is clean, and no client ever read a
// version lower than one it had already seen.
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "support/http_client.h"
#include "support/process.h"
#include "support/servers.h"

namespace balanced::testing {
namespace {

using namespace std::chrono_literals;

std::string bench_line(const std::string& output, const std::string& prefix) {
  const size_t at = output.find(prefix);
  if (at == std::string::npos) return {};
  return output.substr(at, output.find('\n', at) - at);
}

class Replicas : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(mariadb_.start()) << mariadb_.error();
    ASSERT_TRUE(mariadb_.create_database("ledger"));
    db_ = mariadb_.url("ledger");
    auto [code, output] = run_command({BALANCECTL_BINARY, "migrate", "--db", db_}, dir_.path() / "migrate.log");
    ASSERT_EQ(code, 0) << output;
    ASSERT_TRUE(cluster_.start()) << cluster_.error();
    for (int i = 0; i < 3; ++i) {
      const auto dir = dir_.path() / ("replica" + std::to_string(i));
      std::filesystem::create_directories(dir);
      replicas_.push_back(std::make_unique<BalancedServer>(
          dir, std::vector<std::string>{"--cache", cluster_.url(), "--singleton-interval-ms", "200",
                                        "--lease-ttl-ms", "2000", "--threads", "2",
                                        // Above the default 1: one replica's batches race too.
                                        "--mysql-committers", "2"}));
      replicas_.back()->set_db(db_);
      ASSERT_TRUE(replicas_.back()->start()) << replicas_.back()->log();
    }
  }

  // The index of the replica whose /metrics says it holds the singleton lease, or -1.
  int leader() {
    for (size_t i = 0; i < replicas_.size(); ++i) {
      if (!replicas_[i]->process().running()) continue;
      HttpClient client(replicas_[i]->port(), 2000);
      if (!client.connect()) continue;
      auto response = client.request("GET", "/metrics");
      if (response && response->body.find("\nbalanced_singleton_leader 1") != std::string::npos) {
        return static_cast<int>(i);
      }
    }
    return -1;
  }

  // Waits until `replica` answers /readyz with 200 (storage reachable, schema current).
  bool ready(BalancedServer& replica, std::chrono::milliseconds wait) {
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (std::chrono::steady_clock::now() < deadline) {
      HttpClient client(replica.port(), 2000);
      if (client.connect()) {
        auto response = client.request("GET", "/readyz");
        if (response && response->status == 200) return true;
      }
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  // Transactions committed so far (rejections recorded too), or -1 when the database
  // does not answer.
  int64_t committed() {
    auto [code, output] = mariadb_.sql("SELECT COUNT(*) FROM ledger.transactions");
    const size_t digits = output.find_last_of("0123456789");
    if (code != 0 || digits == std::string::npos) return -1;
    const size_t first = output.find_last_not_of("0123456789", digits);
    return std::stoll(output.substr(first + 1, digits - first));
  }
  // Waits until at least `more` transactions more than `from` are committed (at most 30 s).
  bool progresses(int64_t from, int64_t more) {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (committed() >= from + more) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  TempDir dir_;
  MariaDb mariadb_{dir_.path() / "mariadb"};
  RedisCluster cluster_{dir_.path() / "redis"};
  std::string db_;
  std::vector<std::unique_ptr<BalancedServer>> replicas_;
};

TEST_F(Replicas, SurviveAKilledReplicaADatabaseRestartAndAKilledRedisMaster) {
  std::string targets;
  for (auto& replica : replicas_) {
    targets += (targets.empty() ? "" : ",") + std::string("127.0.0.1:") + std::to_string(replica->port());
  }
  Process bench;
  const auto bench_log = dir_.path() / "bench.log";
  // Failed requests are bounded: a transfer is retried with its id until it lands (none
  // may stay unknown), and what may fail is a read, or a request in flight, while a
  // replica dies or the database restarts (measured here: 11 of 143,000; bound 200).
  ASSERT_TRUE(bench.start({BALANCECTL_BINARY, "bench", "--target", targets, "--connections", "24",
                           "--threads", "1", "--duration", "30", "--accounts", "200", "--zipf",
                           "1.1", "--read-fraction", "0.3", "--initial-balance", "1000000",
                           "--failures-max", "200", "--quiet"},
                          bench_log));
  // Let the load settle, then one fault every few seconds, and after each the load must
  // go on. The replica killed is the one leading the audit-sealing job, so another must
  // take the lease over.
  ASSERT_TRUE(progresses(0, 500)) << "no load before the faults: " << bench.log();
  const int first_leader = leader();
  ASSERT_GE(first_leader, 0) << "no replica holds the singleton lease";
  replicas_[static_cast<size_t>(first_leader)]->process().kill_hard();
  EXPECT_TRUE(progresses(committed(), 500)) << "no progress after a replica was killed";

  ASSERT_TRUE(mariadb_.restart()) << mariadb_.error();
  EXPECT_TRUE(progresses(committed(), 500)) << "no progress after the database restarted";

  // Node 2 serves slots 10923-16383: its keys' reads fall back to the database. It does
  // not serve the lease's slot (7374, "{balanced:singleton}"); had it, no replica could
  // take the lease until the node returned, and sealing would wait (deferred, not lost).
  cluster_.node(2).kill();
  EXPECT_TRUE(progresses(committed(), 500)) << "no progress after a Redis master was killed";

  const int bench_code = bench.wait(300'000);
  const std::string output = bench.log();
  EXPECT_EQ(bench_code, 0) << output;
  // Transfers went through before, between and after the faults...
  EXPECT_NE(output.find("transfers: ok="), std::string::npos) << output;
  EXPECT_EQ(output.find("transfers: ok=0 "), std::string::npos) << output;
  // ...each acknowledged one was found committed, once (ids are unique keys), with its
  // amount and accounts, and no read went back in version.
  const std::string check = bench_line(output, "check:");
  EXPECT_NE(check.find(" 0 problems"), std::string::npos) << output;
  const std::string transfers = bench_line(output, "transfers:");
  EXPECT_EQ(transfers.find("versions_checked=0 "), std::string::npos) << transfers;
  EXPECT_NE(transfers.find(" unknown=0 "), std::string::npos) << transfers;
  const std::string failures = bench_line(output, "failures:");
  EXPECT_FALSE(failures.empty()) << output;

  // The surviving replicas are ready again (database back, Redis degraded to the DB).
  for (size_t i = 0; i < replicas_.size(); ++i) {
    if (static_cast<int>(i) == first_leader) continue;
    EXPECT_TRUE(ready(*replicas_[i], 30s)) << replicas_[i]->log();
  }
  // A survivor took the lease over and sealed the whole audit chain; verify checks it.
  auto [code, verify] = verify_when_sealed(db_, dir_.path());
  EXPECT_NE(verify.find("awaiting the chain: 0\n"), std::string::npos) << verify;
  const int second_leader = leader();
  EXPECT_GE(second_leader, 0);
  EXPECT_NE(second_leader, first_leader);
  EXPECT_EQ(code, 0) << verify;
  EXPECT_NE(verify.find("verify: clean"), std::string::npos) << verify;
  std::printf("%s\n%s\n%s\n%s", transfers.c_str(), failures.c_str(), check.c_str(), verify.c_str());
}

}  // namespace
}  // namespace balanced::testing

namespace balanced::testing {
namespace {

// One replica on MariaDB: the schema gate, the password file, and a database outage
// seen from HTTP.
class OnMariaDb : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(mariadb_.start()) << mariadb_.error();
    ASSERT_TRUE(mariadb_.create_database("ledger"));
  }
  std::optional<HttpResponse> call(uint16_t port, const std::string& method,
                                   const std::string& target, const std::string& body = "") {
    HttpClient client(port, 20000);
    if (!client.connect()) return std::nullopt;
    return client.request(method, target, body);
  }
  // Polls `target` until it answers `status` (at most 10 s).
  bool wait_for_status(uint16_t port, const std::string& target, int status) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = call(port, "GET", target);
      if (r && r->status == status) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }
  TempDir dir_;
  MariaDb mariadb_{dir_.path() / "mariadb"};
};

// DESIGN.md section 12: a database that stops answering (its process stopped, every
// connection open and silent, as a blackholed network looks) holds nothing: a write is
// answered 503 unavailable with Retry-After at --storage-deadline-ms, /readyz turns 503
// and /metrics says balanced_storage_up 0 without waiting on it; when it answers again,
// service resumes by itself and a retried id is applied once.
TEST_F(OnMariaDb, AStalledDatabaseIsAnswered503AtTheDeadlineAndNeverHoldsTheProbes) {
  auto [code, output] = run_command({BALANCECTL_BINARY, "migrate", "--db", mariadb_.url("ledger")},
                                    dir_.path() / "migrate.log");
  ASSERT_EQ(code, 0) << output;
  BalancedServer server(dir_.path(), {"--storage-deadline-ms", "1500"});
  server.set_db(mariadb_.url("ledger"));
  ASSERT_TRUE(server.start()) << server.log();
  const uint16_t port = server.port();
  ASSERT_EQ(call(port, "POST", "/accounts", R"({"accountNumber":"a","initialBalance":100})")->status, 201);
  ASSERT_EQ(call(port, "POST", "/accounts", R"({"accountNumber":"b"})")->status, 201);
  const std::string move =
      R"({"transactionId":"stalled-1","sourceAccountNumber":"a","destinationAccountNumber":"b","amount":7})";

  mariadb_.process().pause();
  // The write is answered 503 unavailable with Retry-After, though the database answers
  // nothing; its fate is unknown (the COMMIT may land once the database resumes).
  auto stalled = call(port, "POST", "/accounts/transactions", move);
  ASSERT_TRUE(stalled.has_value()) << "no answer while the database was stalled";
  EXPECT_EQ(stalled->status, 503) << stalled->body;
  EXPECT_NE(stalled->body.find("\"code\":\"unavailable\""), std::string::npos) << stalled->body;
  EXPECT_EQ(stalled->header("retry-after"), "1");
  // A read the cache cannot answer is bounded too: 503 within the deadline (1.5 s, rounded
  // up to 2 s for MySQL's timeouts), long before MySQL's own 10 s read timeout, which this
  // client's 8 s would not outwait.
  HttpClient reader(port, 8000);
  auto read = reader.request("GET", "/accounts/b/balance?consistency=strong");
  ASSERT_TRUE(read.has_value()) << "no answer to a read within 8 s while the database was stalled";
  EXPECT_EQ(read->status, 503) << read->body;
  // Readiness turns off without any probe waiting on the database.
  EXPECT_TRUE(wait_for_status(port, "/readyz", 503));
  auto metrics = call(port, "GET", "/metrics");
  ASSERT_TRUE(metrics.has_value());
  EXPECT_NE(metrics->body.find("balanced_storage_up 0"), std::string::npos);

  mariadb_.process().resume();
  EXPECT_TRUE(wait_for_status(port, "/readyz", 200));
  metrics = call(port, "GET", "/metrics");
  EXPECT_NE(metrics->body.find("balanced_storage_up 1"), std::string::npos);
  // The client retries the same id: one outcome, applied once.
  auto retried = call(port, "POST", "/accounts/transactions", move);
  ASSERT_TRUE(retried.has_value());
  EXPECT_TRUE(retried->status == 201 || retried->status == 200) << retried->body;
  auto balance = call(port, "GET", "/accounts/b/balance?consistency=strong");
  ASSERT_EQ(balance->status, 200);
  EXPECT_NE(balance->body.find("\"balance\":7"), std::string::npos) << balance->body;
  EXPECT_EQ(server.process().terminate(), 0) << server.log();
}

TEST_F(OnMariaDb, RefusesAnOlderSchemaThenServesAndRidesOutAnOutage) {
  // Not migrated: balanced refuses to serve and says what to do.
  BalancedServer early(dir_.path(), {});
  early.set_db(mariadb_.url("ledger"));
  EXPECT_FALSE(early.start());
  EXPECT_NE(early.log().find("balancectl migrate"), std::string::npos) << early.log();

  auto [code, output] = run_command({BALANCECTL_BINARY, "migrate", "--db", mariadb_.url("ledger")},
                                    dir_.path() / "migrate.log");
  ASSERT_EQ(code, 0) << output;

  // The password comes from a file (a Kubernetes secret), not the URL.
  const auto secret = dir_.path() / "db-password";
  std::ofstream(secret) << "secret\n";
  const std::string url = "mysql://balanced@127.0.0.1:" + std::to_string(mariadb_.port()) + "/ledger";
  BalancedServer server(dir_.path(), {"--db-password-file", secret.string()});
  server.set_db(url);
  ASSERT_TRUE(server.start()) << server.log();
  EXPECT_EQ(server.log().find("secret"), std::string::npos);  // never logged
  const uint16_t port = server.port();
  ASSERT_EQ(call(port, "POST", "/accounts", R"({"accountNumber":"a","initialBalance":100})")->status, 201);
  ASSERT_EQ(call(port, "POST", "/accounts", R"({"accountNumber":"b"})")->status, 201);
  const std::string move =
      R"({"transactionId":"t1","sourceAccountNumber":"a","destinationAccountNumber":"b","amount":40})";
  ASSERT_EQ(call(port, "POST", "/accounts/transactions", move)->status, 201);
  EXPECT_EQ(call(port, "GET", "/readyz")->status, 200);

  // The database goes away: not ready (at the next ping, within a second or two), writes
  // 503 unavailable (a problem, not a hang).
  ASSERT_EQ(mariadb_.stop(), 0);
  EXPECT_TRUE(wait_for_status(port, "/readyz", 503));
  auto down = call(port, "POST", "/accounts/transactions",
                   R"({"transactionId":"t2","sourceAccountNumber":"a","destinationAccountNumber":"b","amount":5})");
  ASSERT_TRUE(down.has_value());
  EXPECT_EQ(down->status, 503) << down->body;
  EXPECT_NE(down->body.find("\"code\":\"unavailable\""), std::string::npos) << down->body;
  EXPECT_EQ(call(port, "GET", "/accounts/b/balance?consistency=strong")->status, 503);

  // It comes back: service resumes by itself; the retried transfer lands exactly once.
  ASSERT_TRUE(mariadb_.restart()) << mariadb_.error();
  bool ready = false;
  for (int i = 0; i < 100 && !ready; ++i) {
    ready = call(port, "GET", "/readyz")->status == 200;
    if (!ready) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(ready);
  auto retried = call(port, "POST", "/accounts/transactions",
                      R"({"transactionId":"t2","sourceAccountNumber":"a","destinationAccountNumber":"b","amount":5})");
  ASSERT_TRUE(retried.has_value());
  EXPECT_TRUE(retried->status == 201 || retried->status == 200) << retried->body;
  auto balance = call(port, "GET", "/accounts/b/balance?consistency=strong");
  ASSERT_EQ(balance->status, 200);
  EXPECT_NE(balance->body.find("\"balance\":45"), std::string::npos) << balance->body;
  EXPECT_EQ(server.process().terminate(), 0);
}

}  // namespace
}  // namespace balanced::testing
