// The fault lab (DESIGN.md section 12), with real servers: a MariaDB primary and replica
// with semi-synchronous replication AFTER_SYNC, GTID and sync_binlog=1, reached through our
// fault proxy (tests/support/fault_proxy.h), which stands for the endpoint that moves on
// failover and for the network's faults. Under a load of transfers that carry their ids:
//   - the primary killed -9 and the replica promoted by scripts/promote-mariadb-replica.sh;
//   - COMMITs whose answers are lost;
//   - the database blackholed.
// After each: every acknowledged transfer present once, money conserved, no HTTP 500,
// `balancectl verify` clean with the audit chain sealed. Repeated cycles and their timings
// belong to bench/failover.sh.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <mutex>
#include <thread>

#include "support/fault_proxy.h"
#include "support/http_client.h"
#include "support/process.h"
#include "support/servers.h"

namespace balanced::testing {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

constexpr int kAccounts = 8;
constexpr int64_t kInitial = 1'000'000;

// Both servers: binary log with GTIDs, row events, every commit synced.
std::vector<std::string> replication_options(int server_id) {
  return {"--server-id=" + std::to_string(server_id), "--log-bin=binlog", "--log-slave-updates=ON",
          "--binlog-format=ROW", "--sync-binlog=1", "--innodb-flush-log-at-trx-commit=1", "--gtid-strict-mode=ON"};
}

class HaLab : public ::testing::Test {
 protected:
  // The primary and, with `with_replica`, a replica following it by GTID, the primary's
  // semi-sync master side on (AFTER_SYNC, waiting up to a minute for the replica's
  // acknowledgement) once the replica is there: before, every commit would wait out the
  // timeout for a replica that does not exist yet.
  void start_databases(bool with_replica) {
    auto primary_options = replication_options(1);
    primary_options.insert(primary_options.end(),
                           {"--rpl-semi-sync-master-wait-point=AFTER_SYNC", "--rpl-semi-sync-master-timeout=60000"});
    primary_.set_options(primary_options);
    ASSERT_TRUE(primary_.start()) << primary_.error();
    ASSERT_EQ(primary_.sql("CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'repl';"
                           "GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1';").first,
              0);
    if (with_replica) {
      // The semi-sync master side stays off on the replica: with it on and no replica of
      // its own, every transaction it applies would wait out the timeout (measured here).
      auto replica_options = replication_options(2);
      replica_options.insert(replica_options.end(), {"--rpl-semi-sync-slave-enabled=ON", "--read-only=ON"});
      replica_.set_options(replica_options);
      ASSERT_TRUE(replica_.start()) << replica_.error();
      // Its own setup (users) must not stand in its binary log: under gtid_strict_mode
      // the primary's first GTID would then be out of order, and the replica would stop
      // applying (still receiving, and acknowledging, everything).
      auto [code, output] = replica_.sql(
          "RESET MASTER; SET GLOBAL gtid_slave_pos = ''; "
          "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=" + std::to_string(primary_.port()) +
          ", MASTER_USER='repl', MASTER_PASSWORD='repl', MASTER_USE_GTID=slave_pos; START SLAVE;");
      ASSERT_EQ(code, 0) << output;
      ASSERT_EQ(primary_.sql("SET GLOBAL rpl_semi_sync_master_enabled = ON").first, 0);
      // The primary sees its semi-synchronous replica before any write counts.
      const auto deadline = std::chrono::steady_clock::now() + 30s;
      while (primary_.value("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE "
                            "VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_CLIENTS'") != "1") {
        ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the replica never connected semi-synchronously";
        std::this_thread::sleep_for(100ms);
      }
    }
    ASSERT_TRUE(primary_.create_database("ledger"));
    proxy_ = std::make_unique<FaultProxy>(primary_.port());
    db_ = "mysql://balanced:secret@127.0.0.1:" + std::to_string(proxy_->port()) + "/ledger";
    auto [code, output] = run_command({BALANCECTL_BINARY, "migrate", "--db", db_}, dir_.path() / "migrate.log");
    ASSERT_EQ(code, 0) << output;
  }

  void start_balanced() {
    server_ = std::make_unique<BalancedServer>(dir_.path(), std::vector<std::string>{"--storage-deadline-ms", "3000",
                                                                                    "--cache", "none", "--threads", "2"});
    server_->set_db(db_);
    ASSERT_TRUE(server_->start()) << server_->log();
    HttpClient client(server_->port());
    for (int i = 0; i < kAccounts; ++i) {
      auto created = client.request("POST", "/accounts",
                                    "{\"accountNumber\":\"h" + std::to_string(i) + "\",\"initialBalance\":" +
                                        std::to_string(kInitial) + "}");
      ASSERT_TRUE(created && created->status == 201) << (created ? created->body : "no answer");
    }
  }

  // Clients sending transfers with their own ids until stopped; a 5xx or a lost answer is
  // "unknown" and sent again with the same id (as DESIGN.md section 4 tells a client to).
  void start_load(int clients) {
    for (int c = 0; c < clients; ++c) {
      clients_.emplace_back([this, c] {
        HttpClient client(server_->port(), 15000);
        for (int n = 0; !stop_.load(); ++n) {
          const std::string id = "ha-" + std::to_string(c) + "-" + std::to_string(n);
          const std::string body = "{\"transactionId\":\"" + id + "\",\"sourceAccountNumber\":\"h" +
                                   std::to_string((c + n) % kAccounts) + "\",\"destinationAccountNumber\":\"h" +
                                   std::to_string((c + n + 1) % kAccounts) + "\",\"amount\":1}";
          bool unknown_before = false;  // an earlier attempt of this id got no answer or a 5xx
          for (int attempt = 0; attempt < 200 && !stop_.load(); ++attempt) {
            auto response = client.request("POST", "/accounts/transactions", body);
            if (!response) {
              unknown_before = true;
              client.close();
              std::this_thread::sleep_for(20ms);
              continue;
            }
            if (response->status >= 500) {
              unknown_before = true;
              if (response->status != 503) ++non_503_;
              ++unavailable_;
              std::this_thread::sleep_for(20ms);
              continue;
            }
            if (response->status == 201 || response->status == 200) {
              std::lock_guard lock(mutex_);
              acknowledged_.push_back(id);
              // A replay answers only a request sent before: on a first attempt it would
              // mean an outcome found by reading back was answered as a replay.
              if (response->status == 200 && !unknown_before) ++replays_of_first_attempts_;
            } else {
              ADD_FAILURE() << id << ": " << response->status << " " << response->body;
            }
            break;
          }
        }
      });
    }
  }
  void stop_load() {
    stop_ = true;
    for (auto& client : clients_) client.join();
    clients_.clear();
  }
  size_t acknowledged() {
    std::lock_guard lock(mutex_);
    return acknowledged_.size();
  }
  // Waits until `more` transfers more are acknowledged (at most 60 s).
  bool progresses(size_t more) {
    const size_t target = acknowledged() + more;
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (acknowledged() < target) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(10ms);
    }
    return true;
  }

  std::string metrics() {
    auto response = HttpClient(server_->port()).request("GET", "/metrics");
    return response ? response->body : "";
  }

  // The invariants, through the API and balancectl verify against the database in use.
  void expect_invariants() {
    HttpClient client(server_->port(), 15000);
    std::vector<std::string> ids;
    {
      std::lock_guard lock(mutex_);
      ids = acknowledged_;
    }
    for (const auto& id : ids) {
      auto found = client.request("GET", "/transactions/" + id);
      ASSERT_TRUE(found);
      ASSERT_EQ(found->status, 200) << "acknowledged " << id << " is missing";
      EXPECT_NE(found->body.find("\"status\":\"committed\""), std::string::npos) << found->body;
    }
    int64_t sum = 0;
    for (int i = 0; i < kAccounts; ++i) {
      auto balance = client.request("GET", "/accounts/h" + std::to_string(i) + "/balance?consistency=strong");
      ASSERT_TRUE(balance && balance->status == 200);
      boost::system::error_code ec;
      sum += json::parse(balance->body, ec).as_object()["balance"].as_int64();
    }
    EXPECT_EQ(sum, kInitial * kAccounts);
    EXPECT_EQ(non_503_.load(), 0) << "a 5xx other than 503 reached a client";
    EXPECT_EQ(replays_of_first_attempts_.load(), 0) << "a first attempt was answered 200 Idempotent-Replayed";
    // The audit chain is sealed by the singleton job within seconds.
    auto [code, verify] = verify_when_sealed(db_, dir_.path());
    EXPECT_EQ(code, 0) << verify;
    EXPECT_NE(verify.find("verify: clean"), std::string::npos) << verify;
    EXPECT_NE(verify.find("awaiting the chain: 0\n"), std::string::npos) << verify;
  }

  void TearDown() override {
    if (!clients_.empty()) stop_load();
    if (server_) EXPECT_EQ(server_->process().terminate(), 0) << server_->log();
  }

  TempDir dir_;
  MariaDb primary_{dir_.path() / "primary"};
  MariaDb replica_{dir_.path() / "replica"};
  std::unique_ptr<FaultProxy> proxy_;
  std::string db_;
  std::unique_ptr<BalancedServer> server_;
  std::vector<std::thread> clients_;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::vector<std::string> acknowledged_;
  std::atomic<int> replays_of_first_attempts_{0};
  std::atomic<int> unavailable_{0};
  std::atomic<int> non_503_{0};
};

TEST_F(HaLab, APrimaryKilledUnderLoadAndItsReplicaPromotedLosesNothingAcknowledged) {
  ASSERT_NO_FATAL_FAILURE(start_databases(true));
  ASSERT_NO_FATAL_FAILURE(start_balanced());
  start_load(6);
  ASSERT_TRUE(progresses(500)) << server_->log();
  // balanced sees that its primary has a synchronous replica: RPO 0 holds.
  EXPECT_NE(metrics().find("\nbalanced_storage_synchronous_replica 1\n"), std::string::npos) << metrics();

  primary_.kill();  // -9: no shutdown, whatever was in flight is cut
  auto [code, output] = run_command({PROMOTE_SCRIPT, "--no-defaults", "-h127.0.0.1",
                                     "-P" + std::to_string(replica_.port()), "-uroot"},
                                    dir_.path() / "promote.log");
  ASSERT_EQ(code, 0) << output;
  proxy_->move(replica_.port());
  // Writes come back by themselves: balanced reconnects to the moved endpoint.
  EXPECT_TRUE(progresses(500)) << server_->log();
  stop_load();
  expect_invariants();
  std::printf("acknowledged %zu transfers (%d answered 503 meanwhile, retried); %s\n", acknowledged(),
              unavailable_.load(), output.c_str());
}

TEST_F(HaLab, ACommitWhoseAnswerIsLostIsAnsweredAsAFirstAttempt) {
  ASSERT_NO_FATAL_FAILURE(start_databases(false));
  ASSERT_NO_FATAL_FAILURE(start_balanced());
  start_load(4);
  ASSERT_TRUE(progresses(200));
  // The batch's last round trip ends in ";COMMIT": its answer is dropped and the
  // connection closed. The batch is retried, finds its own commit, and answers 201 (a
  // replay answered to a first attempt fails expect_invariants()).
  proxy_->set_mode(FaultProxy::Mode::drop_after, ";COMMIT");
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (proxy_->dropped_answers() < 3 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  proxy_->set_mode(FaultProxy::Mode::pass);
  ASSERT_GE(proxy_->dropped_answers(), 3);
  EXPECT_TRUE(progresses(200));
  stop_load();
  const std::string text = metrics();
  const size_t at = text.find("\nbalanced_engine_commits_found_on_retry_total ");
  ASSERT_NE(at, std::string::npos) << text;
  EXPECT_GE(std::stod(text.substr(at + 46)), 1.0) << "no lost COMMIT was found by a retry";
  expect_invariants();
}

TEST_F(HaLab, ABlackholedDatabaseIsAnswered503AndHealsByItself) {
  ASSERT_NO_FATAL_FAILURE(start_databases(false));
  ASSERT_NO_FATAL_FAILURE(start_balanced());
  start_load(4);
  ASSERT_TRUE(progresses(200));
  // Open connections hang; new ones are accepted and hang too. Nothing is refused.
  proxy_->set_mode(FaultProxy::Mode::blackhole);
  proxy_->move(primary_.port());  // cut the open connections into the hole as well
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (unavailable_.load() < 4 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  EXPECT_GE(unavailable_.load(), 4) << "no 503 while the database was blackholed";
  {
    HttpClient client(server_->port(), 5000);
    const auto ready_deadline = std::chrono::steady_clock::now() + 10s;
    int status = 200;
    while (status != 503 && std::chrono::steady_clock::now() < ready_deadline) {
      auto ready = client.request("GET", "/readyz");
      ASSERT_TRUE(ready) << "/readyz held by the blackholed database";
      status = ready->status;
    }
    EXPECT_EQ(status, 503);
  }
  proxy_->set_mode(FaultProxy::Mode::pass);
  EXPECT_TRUE(progresses(200)) << server_->log();
  stop_load();
  expect_invariants();
}

}  // namespace
}  // namespace balanced::testing
