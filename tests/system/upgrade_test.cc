// Issue 20, item 7: a ledger written by the previous release is upgraded in place by this
// one, on SQLite and on MariaDB. The ledgers are fixtures made by that release's own
// binaries (tests/fixtures/README.md says how): nothing here writes them with this build.
//
// Both hold the same history: accounts alice, bob, carol (USD, 1,000 each), eve (EUR, 50)
// and zed (EUR, 0); transfers old-t1..3 (alice -> bob, 10, 20, 30), old-rejected (carol ->
// bob, refused) and old-eur (eve -> zed, 20). The SQLite one was then stopped cleanly,
// restarted with a long materialize interval, given old-t4..6 (bob -> carol, 40, 50, 60)
// and account `late` (5), and killed -9: those live only in its commit log, in the
// previous release's record format.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "support/http_client.h"
#include "support/process.h"
#include "support/servers.h"

namespace balanced::testing {
namespace {

namespace json = boost::json;

const std::filesystem::path kFixtures = std::filesystem::path(BALANCED_SOURCE_DIR) / "tests" / "fixtures";

json::object object_of(const std::optional<HttpResponse>& response) {
  if (!response) return {};
  boost::system::error_code ec;
  json::value value = json::parse(response->body, ec);
  return !ec && value.is_object() ? value.as_object() : json::object{};
}

int64_t balance_of(HttpClient& client, const std::string& account) {
  auto o = object_of(client.request("GET", "/accounts/" + account + "/balance?consistency=strong"));
  return o.contains("balance") ? o["balance"].as_int64() : -1;
}

// What both fixtures hold, read through this build, then a deposit written by it.
void expect_the_old_history_and_a_new_deposit(uint16_t port, bool with_commit_log_tail) {
  HttpClient client(port);
  EXPECT_EQ(balance_of(client, "alice"), 940);
  EXPECT_EQ(balance_of(client, "bob"), with_commit_log_tail ? 910 : 1060);
  EXPECT_EQ(balance_of(client, "carol"), with_commit_log_tail ? 1150 : 1000);
  EXPECT_EQ(balance_of(client, "eve"), 30);
  EXPECT_EQ(balance_of(client, "zed"), 20);
  auto old = object_of(client.request("GET", "/transactions/old-t2"));
  EXPECT_EQ(old["status"], json::value("committed"));
  EXPECT_EQ(old["amount"], json::value(20));
  EXPECT_EQ(old["timestamp"], json::value("2026-12-01T00:00:02Z"));
  EXPECT_FALSE(old.contains("sourceVersionAfter"));  // not kept before this release
  EXPECT_FALSE(old.contains("reference"));
  auto refused = object_of(client.request("GET", "/transactions/old-rejected"));
  EXPECT_EQ(refused["status"], json::value("rejected"));
  EXPECT_EQ(refused["rejectCode"], json::value("insufficient_funds"));
  if (with_commit_log_tail) {
    auto tail = object_of(client.request("GET", "/transactions/old-t6"));
    EXPECT_EQ(tail["status"], json::value("committed"));
    EXPECT_EQ(balance_of(client, "late"), 5);
  }
  // A balance at an instant, from rows that kept no versions: the version is counted.
  auto long_ago = object_of(client.request("GET", "/accounts/bob/balance?asOf=2000-01-01T00:00:00Z"));
  EXPECT_EQ(long_ago["balance"], json::value(0));
  EXPECT_EQ(long_ago["version"], json::value(0));
  auto latest = object_of(client.request("GET", "/accounts/bob/balance?asOf=9999-01-01T00:00:00Z"));
  EXPECT_EQ(latest["balance"], json::value(with_commit_log_tail ? 910 : 1060));
  EXPECT_EQ(latest["version"], json::value(with_commit_log_tail ? 7 : 4));  // opened, 3 in (, 3 out)
  // A retried transfer of the old release replays: its request hash is unchanged.
  auto replay = client.request("POST", "/accounts/transactions",
                               R"({"transactionId":"old-t1","sourceAccountNumber":"alice","destinationAccountNumber":"bob","amount":10})");
  ASSERT_TRUE(replay);
  EXPECT_EQ(replay->status, 200) << replay->body;
  // This build writes next to the old rows.
  auto deposit = client.request("POST", "/accounts/alice/deposits",
                                R"({"transactionId":"new-dep","amount":60,"reference":"after-upgrade"})");
  ASSERT_TRUE(deposit);
  ASSERT_EQ(deposit->status, 201) << deposit->body;
  auto o = object_of(deposit);
  EXPECT_EQ(o["reference"], json::value("after-upgrade"));
  // alice: opened (1), three transfers out (4), the deposit (5).
  EXPECT_EQ(o["destinationVersionAfter"], json::value(5));
  EXPECT_EQ(balance_of(client, "alice"), 1000);
  auto history = object_of(client.request("GET", "/accounts/alice/transactions?limit=10"));
  ASSERT_TRUE(history.contains("transactions"));
  EXPECT_EQ(history["transactions"].as_array().size(), 5u);  // the opening deposit too
  // The change feed starts with the first change after the upgrade, at 1.
  auto events = object_of(client.request("GET", "/events"));
  ASSERT_TRUE(events.contains("events"));
  ASSERT_EQ(events["events"].as_array().size(), 1u);
  EXPECT_EQ(events["events"].as_array()[0].at("id"), json::value(1));
  EXPECT_EQ(events["events"].as_array()[0].at("type"), json::value("transaction.deposit"));
}

TEST(Upgrade, ASqliteLedgerOfThePreviousReleaseWithRecordsOnlyInItsCommitLog) {
  TempDir dir;
  auto [untar, output] = run_command(
      {find_program("tar"), "xzf", (kFixtures / "sqlite-release-1.tar.gz").string(), "-C", dir.path().string()},
      dir.path() / "tar.log");
  ASSERT_EQ(untar, 0) << output;
  BalancedServer server(dir.path());  // sqlite:DIR/ledger.db: migrated, then recovered
  ASSERT_TRUE(server.start()) << server.log();
  expect_the_old_history_and_a_new_deposit(server.port(), true);
  EXPECT_EQ(server.process().terminate(), 0) << server.log();
  auto [code, report] = run_command({BALANCECTL_BINARY, "verify", "--db", server.db()}, dir.path() / "verify.log");
  EXPECT_EQ(code, 0) << report;
  EXPECT_NE(report.find("verify: clean"), std::string::npos) << report;
  // Restarted on its own writes (format 2 records, schema 2): the same.
  ASSERT_TRUE(server.start()) << server.log();
  HttpClient client(server.port());
  EXPECT_EQ(balance_of(client, "alice"), 1000);
  EXPECT_EQ(server.process().terminate(), 0) << server.log();
}

// The holds of the release before schema 13, which found them by four partial indexes
// of transactions, found by hold_keys after the upgrade (tests/fixtures/README.md):
// h-pending and h-to-alice were pending and overdue a minute after they were placed,
// h-review a pending review hold of rule big-transfer that expires 30 days after the
// fixture was made, h-captured and h-voided ended, h-refused a rejected hold (no key).
// `reviewRule=*` reads the file too: an empty rule was bound as NULL before, and the
// queue then held only the holds not yet materialized.
TEST(Upgrade, ASqliteLedgerWithHoldsFindsThemByTheirKeys) {
  TempDir dir;
  auto [untar, output] = run_command({find_program("tar"), "xzf", (kFixtures / "sqlite-release-12-holds.tar.gz").string(),
                                      "-C", dir.path().string()},
                                     dir.path() / "tar.log");
  ASSERT_EQ(untar, 0) << output;
  BalancedServer server(dir.path(), {"--singleton-interval-ms", "100"});
  ASSERT_TRUE(server.start()) << server.log();
  HttpClient client(server.port());
  const auto hold_ids = [&client](const std::string& target) {
    std::vector<std::string> ids;
    auto page = object_of(client.request("GET", target));
    if (!page.contains("holds")) return std::vector<std::string>{"(no holds: " + json::serialize(page) + ")"};
    for (const auto& hold : page["holds"].as_array()) ids.emplace_back(hold.at("holdId").as_string());
    return ids;
  };
  const auto status_of = [&client](const std::string& id) {
    auto hold = object_of(client.request("GET", "/holds/" + id));
    return hold.contains("status") ? std::string(hold["status"].as_string()) : "(none)";
  };
  // Every committed hold of either party, newest first; the rejected one is no hold.
  const std::vector<std::string> alices{"h-to-alice", "h-review", "h-voided", "h-captured", "h-pending"};
  EXPECT_EQ(hold_ids("/accounts/h-alice/holds"), alices);
  EXPECT_EQ(hold_ids("/accounts/h-bob/holds"), alices);
  EXPECT_EQ(hold_ids("/accounts/h-alice/holds?limit=2"), (std::vector<std::string>{"h-to-alice", "h-review"}));
  // The overdue ones are found and expired by the sweeper; the ended ones stay as they were.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while ((status_of("h-pending") != "expired" || status_of("h-to-alice") != "expired") &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(status_of("h-pending"), "expired");
  EXPECT_EQ(status_of("h-to-alice"), "expired");
  EXPECT_EQ(status_of("h-captured"), "captured");
  EXPECT_EQ(status_of("h-voided"), "voided");
  EXPECT_EQ(status_of("h-refused"), "rejected");  // recorded, and in no list
  // The review queue holds h-review while it is pending (until 30 days after the fixture
  // was made; expired after that, and then out of the queue).
  const bool review_pending = status_of("h-review") == "pending";
  const std::vector<std::string> queue = review_pending ? std::vector<std::string>{"h-review"} : std::vector<std::string>{};
  EXPECT_EQ(hold_ids("/holds?reviewRule=big-transfer"), queue);
  EXPECT_EQ(hold_ids("/holds?reviewRule=*"), queue);
  // This build's own hold: listed, swept when overdue, out of the queue once captured.
  auto placed = client.request("POST", "/holds",
                               R"({"holdId":"h-new","sourceAccountNumber":"h-alice","destinationAccountNumber":"h-bob","amount":10})");
  ASSERT_TRUE(placed);
  ASSERT_EQ(placed->status, 201) << placed->body;
  EXPECT_EQ(hold_ids("/accounts/h-bob/holds?limit=1"), std::vector<std::string>{"h-new"});
  auto captured = client.request("POST", "/holds/h-new/capture", R"({"captureId":"h-new-capture","amount":10})");
  ASSERT_TRUE(captured);
  EXPECT_EQ(captured->status, 201) << captured->body;
  EXPECT_EQ(status_of("h-new"), "captured");
  // The feed: the fixture's events (bodies kept whole) and this build's (most of them
  // rendered from their rows, schema 14) read the same after a restart, from the file.
  const auto feed = [](HttpClient& reader) {
    auto response = reader.request("GET", "/events?after=0&limit=1000");
    return response ? response->body : std::string("(no answer)");
  };
  const std::string before_restart = feed(client);
  EXPECT_NE(before_restart.find("\"transaction.capture\""), std::string::npos) << before_restart;
  EXPECT_EQ(server.process().terminate(), 0) << server.log();
  ASSERT_TRUE(server.start()) << server.log();
  HttpClient restarted(server.port());
  EXPECT_EQ(feed(restarted), before_restart);
  EXPECT_EQ(server.process().terminate(), 0) << server.log();
  auto [code, report] = run_command({BALANCECTL_BINARY, "verify", "--db", server.db()}, dir.path() / "verify.log");
  EXPECT_EQ(code, 0) << report;
  EXPECT_NE(report.find("verify: clean"), std::string::npos) << report;
}

TEST(Upgrade, AMariaDbLedgerOfThePreviousReleaseIsMigratedInPlace) {
  TempDir dir;
  MariaDb mariadb(dir.path() / "mariadb");
  ASSERT_TRUE(mariadb.start()) << mariadb.error();
  ASSERT_TRUE(mariadb.create_database("ledger"));
  auto [loaded, output] = run_command(
      {"/bin/sh", "-c",
       find_program("mariadb") + " --no-defaults -h127.0.0.1 -P" + std::to_string(mariadb.port()) + " -uroot ledger < " +
           (kFixtures / "mysql-release-1.sql").string()},
      dir.path() / "load.log");
  ASSERT_EQ(loaded, 0) << output;
  EXPECT_EQ(mariadb.value("SELECT MAX(version) FROM ledger.schema_migrations"), "2");
  // The schema gate: this build refuses the old schema until it is migrated.
  BalancedServer refused(dir.path(), {"--cache", "none"});
  refused.set_db(mariadb.url("ledger"));
  EXPECT_FALSE(refused.start());
  auto [migrated, migrate_output] =
      run_command({BALANCECTL_BINARY, "migrate", "--db", mariadb.url("ledger")}, dir.path() / "migrate.log");
  ASSERT_EQ(migrated, 0) << migrate_output;
  EXPECT_NE(migrate_output.find("2 -> 11"), std::string::npos) << migrate_output;
  // The gate for replicas still on the previous release: their insert (its column list,
  // without the versions after) fails once the database is migrated.
  auto [old_write, old_output] = mariadb.sql(
      "INSERT INTO ledger.transactions (transaction_id, type, source_account, destination_account, amount, "
      "currency, status, reject_code, source_balance_after, destination_balance_after, request_hash, "
      "client_timestamp, created_at) VALUES ('old-release', 'transfer', 'alice', 'bob', 1, 'USD', 'committed', "
      "NULL, 0, 0, '', '', 0)");
  EXPECT_NE(old_write, 0);
  EXPECT_NE(old_output.find("1364"), std::string::npos) << old_output;
  BalancedServer server(dir.path(), {"--cache", "none"});
  server.set_db(mariadb.url("ledger"));
  ASSERT_TRUE(server.start()) << server.log();
  expect_the_old_history_and_a_new_deposit(server.port(), false);
  auto [code, report] = verify_when_sealed(mariadb.url("ledger"), dir.path());
  EXPECT_EQ(code, 0) << report;
  EXPECT_NE(report.find("verify: clean"), std::string::npos) << report;
  EXPECT_EQ(server.process().terminate(), 0) << server.log();
}

}  // namespace
}  // namespace balanced::testing
