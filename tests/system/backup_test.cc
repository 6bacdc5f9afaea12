// Backups under load, restored into fresh storage: SQLite with `balancectl backup` /
// `restore` (the commit log included), and MariaDB with `mariadb-dump
// --single-transaction` into a fresh server. Each time the restored ledger verifies clean
// and holds every transfer acknowledged before the backup began.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "support/http_client.h"
#include "support/process.h"
#include "support/servers.h"

namespace balanced::testing {
namespace {

using namespace std::chrono_literals;

// Clients posting transfers with ids; remembers which were acknowledged and in what order.
class TransferLoad {
 public:
  TransferLoad(uint16_t port, int accounts, int clients) : port_(port), accounts_(accounts) {
    for (int c = 0; c < clients; ++c) threads_.emplace_back([this, c] { run(c); });
  }
  ~TransferLoad() { stop(); }
  void stop() {
    stopping_ = true;
    for (auto& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }
  // The ids acknowledged so far.
  std::vector<std::string> acknowledged() {
    std::lock_guard lock(mutex_);
    return acknowledged_;
  }
  int errors() const { return errors_.load(); }
  // Waits until at least `count` transfers are acknowledged (at most 60 s); false if not.
  bool wait_for(size_t count) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      {
        std::lock_guard lock(mutex_);
        if (acknowledged_.size() >= count) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

 private:
  void run(int client) {
    HttpClient http(port_, 15000);
    for (int n = 0; !stopping_.load(); ++n) {
      const std::string id = "bk-" + std::to_string(client) + "-" + std::to_string(n);
      const int from = (client + n) % accounts_;
      const int to = (from + 1) % accounts_;
      auto response = http.request("POST", "/accounts/transactions",
                                   "{\"transactionId\":\"" + id + "\",\"sourceAccountNumber\":\"b" + std::to_string(from) +
                                       "\",\"destinationAccountNumber\":\"b" + std::to_string(to) + "\",\"amount\":1}");
      if (response && response->status == 201) {
        std::lock_guard lock(mutex_);
        acknowledged_.push_back(id);
      } else {
        errors_.fetch_add(1);
        http.close();
      }
    }
  }
  uint16_t port_;
  int accounts_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> errors_{0};
  std::mutex mutex_;
  std::vector<std::string> acknowledged_;
  std::vector<std::thread> threads_;
};

void create_accounts(uint16_t port, int accounts) {
  HttpClient http(port);
  for (int i = 0; i < accounts; ++i) {
    auto created = http.request("POST", "/accounts",
                                "{\"accountNumber\":\"b" + std::to_string(i) + "\",\"initialBalance\":100000000}");
    ASSERT_TRUE(created && created->status == 201);
  }
}

// Every id is found, committed, through a balanced serving the restored ledger.
void expect_all_present(uint16_t port, const std::vector<std::string>& ids) {
  HttpClient http(port);
  size_t missing = 0;
  std::string first_missing;
  for (const std::string& id : ids) {
    auto found = http.request("GET", "/transactions/" + id);
    if (!found || found->status != 200 || found->body.find("\"committed\"") == std::string::npos) {
      if (missing++ == 0) first_missing = id;
    }
  }
  EXPECT_EQ(missing, 0u) << "of " << ids.size() << ", first " << first_missing;
}

std::string verify(const std::filesystem::path& dir, const std::string& db) {
  auto [code, output] = run_command({BALANCECTL_BINARY, "verify", "--db", db}, dir / "verify.log");
  EXPECT_EQ(code, 0) << output;
  return output;
}

TEST(Backup, SqliteBackupUnderLoadHoldsTheCommitLogToo) {
  TempDir dir;
  // Batches stay in the commit log for a minute: most acknowledged transfers exist only
  // there when the backup runs, which is the case a plain file copy gets wrong.
  BalancedServer server(dir.path(), {"--materialize-interval-ms", "60000"});
  ASSERT_TRUE(server.start()) << server.log();
  constexpr int accounts = 20;
  create_accounts(server.port(), accounts);
  TransferLoad load(server.port(), accounts, 4);
  ASSERT_TRUE(load.wait_for(500)) << "fewer than 500 transfers acknowledged in 60 s";
  const std::vector<std::string> before = load.acknowledged();
  const auto backup = dir.path() / "backup.db";
  auto [code, output] = run_command({BALANCECTL_BINARY, "backup", "--db", server.db(), "--out", backup.string()},
                                    dir.path() / "backup.log");
  ASSERT_EQ(code, 0) << output;
  // Transfers go on during and after it.
  EXPECT_TRUE(load.wait_for(load.acknowledged().size() + 200));
  load.stop();
  EXPECT_EQ(load.errors(), 0);
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "backup.db.commitlog"));
  EXPECT_EQ(server.process().terminate(), 0);

  // Restore into a fresh path; it must refuse to overwrite an existing ledger.
  auto [refused, refused_output] = run_command({BALANCECTL_BINARY, "restore", "--in", backup.string(), "--db", server.db()},
                                               dir.path() / "refused.log");
  EXPECT_EQ(refused, 2) << refused_output;
  const auto restored_dir = dir.path() / "restored";
  std::filesystem::create_directories(restored_dir);
  const std::string restored = "sqlite:" + (restored_dir / "ledger.db").string();
  auto [restore_code, restore_output] = run_command({BALANCECTL_BINARY, "restore", "--in", backup.string(), "--db", restored},
                                                    dir.path() / "restore.log");
  ASSERT_EQ(restore_code, 0) << restore_output;
  EXPECT_NE(verify(dir.path(), restored).find("verify: clean"), std::string::npos);
  BalancedServer again(restored_dir);
  ASSERT_TRUE(again.start()) << again.log();
  expect_all_present(again.port(), before);
  EXPECT_EQ(again.process().terminate(), 0);
}

TEST(Backup, MariaDbDumpUnderLoadRestoresIntoAFreshServer) {
  TempDir dir;
  MariaDb source(dir.path() / "source");
  ASSERT_TRUE(source.start()) << source.error();
  ASSERT_TRUE(source.create_database("ledger"));
  auto [migrated, migrate_output] = run_command({BALANCECTL_BINARY, "migrate", "--db", source.url("ledger")},
                                                dir.path() / "migrate.log");
  ASSERT_EQ(migrated, 0) << migrate_output;
  const auto replica_dir = dir.path() / "replica";
  std::filesystem::create_directories(replica_dir);
  BalancedServer server(replica_dir, {"--cache", "none", "--singleton-interval-ms", "200"});
  server.set_db(source.url("ledger"));
  ASSERT_TRUE(server.start()) << server.log();
  constexpr int accounts = 20;
  create_accounts(server.port(), accounts);
  TransferLoad load(server.port(), accounts, 4);
  ASSERT_TRUE(load.wait_for(500)) << "fewer than 500 transfers acknowledged in 60 s";
  const std::vector<std::string> before = load.acknowledged();
  const auto dump = dir.path() / "ledger.sql";
  const std::string command = find_program("mariadb-dump") + " --no-defaults -h127.0.0.1 -P" +
                              std::to_string(source.port()) + " -uroot --single-transaction --routines --triggers ledger > " +
                              dump.string() + " 2> " + (dir.path() / "dump.err").string();
  ASSERT_EQ(std::system(command.c_str()), 0);
  EXPECT_TRUE(load.wait_for(load.acknowledged().size() + 200));
  load.stop();
  EXPECT_EQ(load.errors(), 0);
  EXPECT_EQ(server.process().terminate(), 0);

  MariaDb target(dir.path() / "target");
  ASSERT_TRUE(target.start()) << target.error();
  ASSERT_TRUE(target.create_database("ledger"));
  const std::string load_command = find_program("mariadb") + " --no-defaults -h127.0.0.1 -P" +
                                   std::to_string(target.port()) + " -uroot ledger < " + dump.string();
  ASSERT_EQ(std::system(load_command.c_str()), 0);
  // A replica on the restored server chains the audit records the dump caught unsealed.
  const auto restored_dir = dir.path() / "restored";
  std::filesystem::create_directories(restored_dir);
  BalancedServer again(restored_dir, {"--cache", "none", "--singleton-interval-ms", "100"});
  again.set_db(target.url("ledger"));
  ASSERT_TRUE(again.start()) << again.log();
  expect_all_present(again.port(), before);
  auto [verify_code, report] = verify_when_sealed(target.url("ledger"), dir.path());
  EXPECT_EQ(verify_code, 0) << report;
  EXPECT_NE(report.find("awaiting the chain: 0"), std::string::npos) << report;
  EXPECT_NE(report.find("verify: clean"), std::string::npos) << report;
  EXPECT_EQ(again.process().terminate(), 0);
}

}  // namespace
}  // namespace balanced::testing
