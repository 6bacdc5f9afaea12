// The production topology on one machine: three balanced replicas on one MariaDB and one
// 3-master Redis Cluster, all real processes. `balancectl bench` spreads transfers and
// balance reads (hot-account skew) over the three while the test kills a replica with
// -9, restarts MariaDB and kills a Redis master. Afterwards every acknowledged transfer
// is present exactly once, `balancectl verify` is clean, and no client ever read a
// version lower than one it had already seen.
#include <gtest/gtest.h>

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
          dir, std::vector<std::string>{"--cache", cluster_.url(), "--singleton-interval-ms",
                                        "200", "--lease-ttl-ms", "2000", "--threads", "2"}));
      replicas_.back()->set_db(db_);
      ASSERT_TRUE(replicas_.back()->start()) << replicas_.back()->log();
    }
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
  ASSERT_TRUE(bench.start({BALANCECTL_BINARY, "bench", "--target", targets, "--connections", "24",
                           "--threads", "1", "--duration", "24", "--accounts", "200", "--zipf",
                           "1.1", "--read-fraction", "0.3", "--initial-balance", "1000000",
                           "--quiet"},
                          bench_log));
  // Let the load settle, then one fault every few seconds.
  std::this_thread::sleep_for(5s);
  replicas_[0]->process().kill_hard();

  std::this_thread::sleep_for(4s);
  ASSERT_TRUE(mariadb_.restart()) << mariadb_.error();

  std::this_thread::sleep_for(5s);
  cluster_.node(2).kill();

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

  // The surviving replicas are ready again (database back, Redis degraded to the DB).
  for (size_t i = 1; i < replicas_.size(); ++i) {
    EXPECT_TRUE(ready(*replicas_[i], 30s)) << replicas_[i]->log();
  }
  // The leader keeps sealing the audit chain; verify checks it all.
  std::this_thread::sleep_for(1s);
  auto [code, verify] = run_command({BALANCECTL_BINARY, "verify", "--db", db_}, dir_.path() / "verify.log");
  EXPECT_EQ(code, 0) << verify;
  EXPECT_NE(verify.find("verify: clean"), std::string::npos) << verify;
  std::printf("%s\n%s\n%s", transfers.c_str(), check.c_str(), verify.c_str());
}

}  // namespace
}  // namespace balanced::testing
