// The storage contract, written once and run against every Store: the in-memory twin,
// SQLite (a real file) and MySQL (a real MariaDB server this process starts).
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <atomic>
#include <chrono>
#include <limits>
#include <thread>

#include "core/audit.h"
#include "core/json_codec.h"
#include "core/verify.h"
#include "storage/memory_store.h"
#include "storage/mysql/mysql_store.h"
#include "storage/reconcile.h"
#include "storage/sqlite/sqlite_db.h"
#include "storage/sqlite/sqlite_store.h"
#include "support/process.h"
#include "support/servers.h"

namespace balanced::storage {
namespace {

using core::CreateAccount;
using core::Operation;
using core::Transfer;

Transfer transfer(std::string id, std::string from, std::string to, int64_t amount) {
  Transfer t{std::move(id), std::move(from), std::move(to), amount, "", "", "", "test"};
  t.request_hash = core::transfer_request_hash(t);
  return t;
}

CreateAccount open(std::string number, int64_t initial) {
  return CreateAccount{std::move(number), "USD", initial, 0, "test"};
}

Transfer hold(std::string id, std::string from, std::string to, int64_t amount, int64_t expires_in_s = 3600) {
  Transfer h = transfer(std::move(id), std::move(from), std::move(to), amount);
  h.type = core::TransactionType::hold;
  h.expires_in_s = expires_in_s;
  h.request_hash = core::hold_request_hash(h);
  return h;
}

core::SettleHold settle(core::TransactionType type, std::string id, std::string hold_id,
                        std::optional<int64_t> amount = std::nullopt) {
  core::SettleHold s{.type = type, .id = std::move(id), .hold_id = std::move(hold_id), .amount = amount};
  if (type == core::TransactionType::expire) s.id = core::expire_transaction_id(s.hold_id);
  s.request_hash = core::settle_request_hash(s);
  return s;
}

core::Refund refund(std::string id, std::string original, std::optional<int64_t> amount = std::nullopt) {
  core::Refund r{.id = std::move(id), .original_id = std::move(original), .amount = amount};
  r.request_hash = core::refund_request_hash(r);
  return r;
}

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Store& store() = 0;
  // Closes and opens the store again on the same data (a no-op in memory).
  virtual void reopen() {}
  // Waits for background work a scan depends on.
  virtual void settle() {}
  // Runs SQL on the store's database, to damage it as a bad writer would (the store open
  // again afterwards); false: the store keeps no SQL database.
  virtual bool damage(const std::string& sql) {
    (void)sql;
    return false;
  }
};

class MemoryBackend final : public Backend {
 public:
  Store& store() override { return store_; }

 private:
  MemoryStore store_;
};

class SqliteBackend final : public Backend {
 public:
  SqliteBackend() { reopen(); }
  Store& store() override { return *store_; }
  void reopen() override {
    store_.reset();
    SqliteOptions options;
    options.path = (dir_.path() / "ledger.db").string();
    options.materialize_interval_ms = 5;
    auto opened = open_sqlite_store(options);
    if (!opened.ok()) throw std::runtime_error(opened.error().detail);
    store_ = std::move(opened.value());
  }
  // Every committed batch in the tables, deterministically: opening the file again
  // materializes what the commit log holds past the watermark (recovery) before it returns.
  void settle() override { reopen(); }
  bool damage(const std::string& sql) override {
    store_.reset();
    {
      sqlite::Connection db;
      if (!db.open((dir_.path() / "ledger.db").string(), SQLITE_OPEN_READWRITE, sqlite::ConnectionOptions{}).ok() ||
          !db.exec(sql).ok()) {
        throw std::runtime_error("cannot run " + sql);
      }
    }
    reopen();
    return true;
  }

 private:
  testing::TempDir dir_;
  std::unique_ptr<SqliteStore> store_;
};

// One MariaDB server per test process, started on first use; a database per test.
testing::MariaDb& shared_mariadb() {
  static testing::TempDir dir;
  static testing::MariaDb server(dir.path());
  static const bool started = server.start();
  if (!started) throw std::runtime_error("cannot start MariaDB: " + server.error());
  return server;
}

class MysqlBackend final : public Backend {
 public:
  MysqlBackend() {
    static int databases = 0;
    auto& server = shared_mariadb();
    name_ = "contract_" + std::to_string(++databases);
    if (!server.create_database(name_)) throw std::runtime_error("cannot create " + name_);
    auto config = mysql::parse_url(server.url(name_));
    if (!config.ok()) throw std::runtime_error(config.error().detail);
    options_.connection = config.value();
    auto migrated = migrate_mysql(options_.connection);
    if (!migrated.ok()) throw std::runtime_error(migrated.error().detail);
    reopen();
  }
  Store& store() override { return *store_; }
  void reopen() override {
    store_.reset();
    auto opened = open_mysql_store(options_);
    if (!opened.ok()) throw std::runtime_error(opened.error().detail);
    store_ = std::move(opened.value());
  }
  // The audit chain is sealed by a singleton job in production; here, at once.
  void settle() override {
    for (;;) {
      auto sealed = store_->seal_audit(1, 1000);
      if (!sealed.ok()) throw std::runtime_error(sealed.error().detail);
      if (sealed.value().sealed == 0) return;
    }
  }
  bool damage(const std::string& sql) override {
    auto c = mysql::Connection::open(options_.connection);
    if (!c.ok() || !c.value()->exec(sql).ok() || !c.value()->exec("COMMIT").ok()) {
      throw std::runtime_error("cannot run " + sql);
    }
    return true;
  }

 private:
  std::string name_;
  MysqlOptions options_;
  std::unique_ptr<MysqlStore> store_;
};

template <typename T>
class StoreContract : public ::testing::Test {
 protected:
  StoreContract() : backend_(std::make_unique<T>()) {}
  Store& store() { return backend_->store(); }
  void reopen() { backend_->reopen(); }

  std::vector<core::Outcome> apply(std::vector<Operation> operations) {
    auto effects = store().apply(operations, now_ms_ += 1000);
    EXPECT_TRUE(effects.ok()) << (effects.ok() ? "" : effects.error().detail);
    return effects.ok() ? effects.value().outcomes : std::vector<core::Outcome>{};
  }

  core::VerifyReport verify() {
    auto report = reconcile(store());
    EXPECT_TRUE(report.ok());
    return report.ok() ? report.value() : core::VerifyReport{};
  }

  void settle() { backend_->settle(); }
  bool damage(const std::string& sql) { return backend_->damage(sql); }

  std::unique_ptr<Backend> backend_;
  int64_t now_ms_ = 1'700'000'000'000;
};

using Backends = ::testing::Types<MemoryBackend, SqliteBackend, MysqlBackend>;
TYPED_TEST_SUITE(StoreContract, Backends);

TYPED_TEST(StoreContract, CreateTransferAndRead) {
  auto created = this->apply({open("alice", 100), open("bob", 0)});
  ASSERT_EQ(created.size(), 2u);
  EXPECT_EQ(created[0].code, Code::ok);
  auto moved = this->apply({transfer("t1", "alice", "bob", 40)});
  ASSERT_EQ(moved[0].code, Code::ok);
  EXPECT_GT(moved[0].transaction->sequence, 0);

  auto alice = this->store().account("alice");
  ASSERT_TRUE(alice.ok());
  EXPECT_EQ(alice.value().balance, 60);
  EXPECT_EQ(alice.value().version, 2);
  auto t1 = this->store().transaction("t1");
  ASSERT_TRUE(t1.ok());
  EXPECT_EQ(t1.value().destination_balance_after, 40);
  EXPECT_EQ(t1.value().sequence, moved[0].transaction->sequence);
  auto deposit = this->store().transaction(core::deposit_transaction_id("alice"));
  ASSERT_TRUE(deposit.ok());
  EXPECT_EQ(deposit.value().type, core::TransactionType::deposit);
}

TYPED_TEST(StoreContract, EveryFieldOfADepositAndAWithdrawalIsKeptAcrossReopen) {
  this->apply({open("alice", 0)});
  Transfer in;
  in.type = core::TransactionType::deposit;
  in.id = "dep-1";
  in.amount = 70;
  in.currency = "USD";
  in.reference = "rail-ref-1";
  in.metadata = R"({"a":"1","b":"x\"y"})";
  in.client_timestamp = "2026-12-06T00:00:00Z";
  in.operator_name = "rail";
  in.request_hash = core::posting_request_hash(in.type, "alice", in);
  in.source = core::issuer_account_number("USD");
  in.destination = "alice";
  Transfer out = in;
  out.type = core::TransactionType::withdrawal;
  out.id = "wd-1";
  out.amount = 30;
  out.metadata.clear();
  out.request_hash = core::posting_request_hash(out.type, "alice", out);
  out.source = "alice";
  out.destination = core::issuer_account_number("USD");
  Transfer refused = out;
  refused.id = "wd-2";
  refused.amount = 1000;
  auto decided = this->apply({in, out, refused});
  ASSERT_EQ(decided.size(), 3u);
  ASSERT_EQ(decided[0].code, Code::ok);
  ASSERT_EQ(decided[1].code, Code::ok);
  ASSERT_EQ(decided[2].code, Code::insufficient_funds);
  this->settle();
  this->reopen();
  for (const auto& outcome : decided) {
    auto stored = this->store().transaction(outcome.transaction->id);
    ASSERT_TRUE(stored.ok()) << outcome.transaction->id;
    EXPECT_EQ(stored.value(), *outcome.transaction) << outcome.transaction->id;
  }
  EXPECT_EQ(decided[0].transaction->reference, "rail-ref-1");
  EXPECT_EQ(decided[1].transaction->source_version_after, 2);  // opened at 0, the deposit made it 1
  const auto report = this->verify();
  EXPECT_TRUE(report.clean()) << (report.problems.empty() ? "" : report.problems.front());
}

TYPED_TEST(StoreContract, AnAccountsTypeStatusLimitAndMetadataAreKept) {
  CreateAccount credit = open("cr", 0);
  credit.type = core::AccountType::credit;
  credit.overdraft_limit = 300;
  credit.metadata = R"({"owner":"ann"})";
  this->apply({credit, open("other", 0)});
  core::PatchAccount p;
  p.number = "cr";
  p.status = core::AccountStatus::frozen;
  p.metadata_patch = R"({"owner":null,"tier":"x|y"})";
  p.reason = "review";
  p.operator_name = "admin";
  auto patched = this->apply({p});
  ASSERT_EQ(patched[0].code, Code::ok) << patched[0].detail;
  this->settle();
  this->reopen();
  auto stored = this->store().account("cr");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored.value(), *patched[0].account);
  EXPECT_EQ(stored.value().type, core::AccountType::credit);
  EXPECT_EQ(stored.value().status, core::AccountStatus::frozen);
  EXPECT_EQ(stored.value().overdraft_limit, 300);
  EXPECT_EQ(stored.value().metadata, R"({"tier":"x|y"})");
  EXPECT_EQ(stored.value().version, 1);
  // Frozen after the reopen too: a debit is refused.
  EXPECT_EQ(this->apply({transfer("cr-1", "cr", "other", 5)})[0].code, Code::account_frozen);
  const auto report = this->verify();
  EXPECT_TRUE(report.clean()) << (report.problems.empty() ? "" : report.problems.front());
}

TYPED_TEST(StoreContract, ABalanceAtAnInstantIsTheOneAfterTheLastChangeBeforeIt) {
  const int64_t opened_at = this->now_ms_ + 1000;
  this->apply({open("a", 100), open("b", 0)});                    // at opened_at
  this->apply({transfer("p1", "a", "b", 10)});                    // + 1 s
  this->apply({transfer("p2", "b", "a", 1'000), transfer("p3", "a", "b", 5)});  // + 2 s: p2 refused
  this->settle();
  auto at = [&](const std::string& number, int64_t ms) {
    auto found = this->store().balance_at(number, ms);
    EXPECT_TRUE(found.ok());
    return found.ok() ? std::make_pair(found.value().balance, found.value().version) : std::make_pair(-1L, -1L);
  };
  EXPECT_EQ(at("a", opened_at - 1), std::make_pair(0L, 0L));  // before its first change
  EXPECT_EQ(at("a", opened_at), std::make_pair(100L, 1L));
  EXPECT_EQ(at("b", opened_at), std::make_pair(0L, 0L));      // opened empty: no change yet
  EXPECT_EQ(at("a", opened_at + 999), std::make_pair(100L, 1L));
  EXPECT_EQ(at("a", opened_at + 1000), std::make_pair(90L, 2L));
  EXPECT_EQ(at("b", opened_at + 1000), std::make_pair(10L, 1L));
  EXPECT_EQ(at("a", opened_at + 2000), std::make_pair(85L, 3L));  // the refusal changed nothing
  EXPECT_EQ(at("b", opened_at + 60'000), std::make_pair(15L, 2L));
  EXPECT_EQ(at("nobody", opened_at + 60'000), std::make_pair(0L, 0L));
  // The same from the tables alone after a reopen (SQLite: commit_times).
  this->reopen();
  EXPECT_EQ(at("a", opened_at + 999), std::make_pair(100L, 1L));
  EXPECT_EQ(at("b", opened_at + 1000), std::make_pair(10L, 1L));
  EXPECT_EQ(at("a", opened_at + 2000), std::make_pair(85L, 3L));
}

TYPED_TEST(StoreContract, HoldsCapturesVoidsExpiriesAndRefundsAreKeptAcrossReopen) {
  using core::HoldStatus;
  using core::TransactionType;
  this->apply({open("alice", 1000), open("shop", 0)});
  // A hold, and one placed and voided in one batch.
  auto placed = this->apply({hold("h1", "alice", "shop", 100), hold("h2", "alice", "shop", 50),
                             settle(TransactionType::void_, "v2", "h2"), hold("h3", "alice", "shop", 30, 1)});
  ASSERT_EQ(placed[0].code, Code::ok) << placed[0].detail;
  ASSERT_EQ(placed[2].code, Code::ok) << placed[2].detail;
  EXPECT_EQ(placed[2].hold->hold_status, HoldStatus::voided);
  this->settle();
  this->reopen();
  auto alice = this->store().account("alice");
  ASSERT_TRUE(alice.ok());
  EXPECT_EQ(alice.value().pending_debits, 130);  // h1 and h3 pending, h2 released
  EXPECT_EQ(alice.value().balance, 1000);
  EXPECT_EQ(this->store().account("shop").value().pending_credits, 130);
  // h3 lives 1 s: the next batch (1 s later) is at its expiresAt, so a capture is refused.
  auto later = this->apply({settle(TransactionType::capture, "c1", "h1", 60),
                            settle(TransactionType::capture, "c3", "h3")});
  ASSERT_EQ(later[0].code, Code::ok) << later[0].detail;
  EXPECT_EQ(later[1].code, Code::hold_not_pending);
  auto overdue = this->store().overdue_holds(this->now_ms_, 10);
  this->settle();
  if (overdue.value().empty()) overdue = this->store().overdue_holds(this->now_ms_, 10);  // materialized now
  ASSERT_TRUE(overdue.ok());
  EXPECT_EQ(overdue.value(), std::vector<std::string>{"h3"});
  auto expired = this->apply({settle(TransactionType::expire, "", "h3"), settle(TransactionType::expire, "", "h3")});
  EXPECT_EQ(expired[0].code, Code::ok) << expired[0].detail;
  EXPECT_TRUE(expired[1].replayed);  // once
  auto refunds = this->apply({refund("r1", "c1", 20), refund("r2", "c1"), refund("r3", "c1", 1),
                              refund("r4", "h1")});
  EXPECT_EQ(refunds[0].code, Code::ok) << refunds[0].detail;
  EXPECT_EQ(refunds[1].code, Code::ok) << refunds[1].detail;
  EXPECT_EQ(refunds[1].transaction->amount, 40);  // the remainder
  EXPECT_EQ(refunds[2].code, Code::exceeds_refundable_amount);
  EXPECT_EQ(refunds[3].code, Code::not_refundable);
  this->settle();
  this->reopen();
  auto h1 = this->store().transaction("h1");
  ASSERT_TRUE(h1.ok());
  EXPECT_EQ(h1.value().hold_status, HoldStatus::captured);
  EXPECT_EQ(h1.value().settled_amount, 60);
  EXPECT_EQ(h1.value().settled_by, "c1");
  EXPECT_EQ(this->store().transaction("h2").value().hold_status, HoldStatus::voided);
  EXPECT_EQ(this->store().transaction("h3").value().hold_status, HoldStatus::expired);
  EXPECT_EQ(this->store().transaction("c1").value().settled_amount, 60);
  EXPECT_EQ(this->store().transaction("r2").value().refund_of, "c1");
  alice = this->store().account("alice");
  EXPECT_EQ(alice.value().pending_debits, 0);
  EXPECT_EQ(alice.value().balance, 1000);  // 60 captured, 60 refunded
  auto holds = this->store().holds("alice", std::nullopt, 2);
  ASSERT_TRUE(holds.ok());
  ASSERT_EQ(holds.value().transactions.size(), 2u);
  EXPECT_EQ(holds.value().transactions[0].id, "h3");  // newest first
  ASSERT_TRUE(holds.value().next_cursor);
  auto rest = this->store().holds("shop", holds.value().next_cursor, 10);
  ASSERT_EQ(rest.value().transactions.size(), 1u);
  EXPECT_EQ(rest.value().transactions[0].id, "h1");
  EXPECT_EQ(rest.value().transactions[0].hold_status, HoldStatus::captured);
  EXPECT_TRUE(this->store().overdue_holds(this->now_ms_ + 10'000'000, 10).value().empty());
  const auto report = this->verify();
  EXPECT_TRUE(report.clean()) << (report.problems.empty() ? "" : report.problems.front());
}

// One transfer refunded a unit at a time over many batches, read meanwhile: each batch
// updates the row a batch before it updated (on SQLite, while the materializer forgets
// the earlier batches).
TYPED_TEST(StoreContract, ATransferRefundedOverManyBatchesKeepsItsNewestState) {
  this->apply({open("buyer", 0), open("shop", 1000)});
  this->apply({transfer("sale", "shop", "buyer", 400)});
  for (int i = 0; i < 300; ++i) {
    auto refunded = this->apply({refund("u" + std::to_string(i), "sale", i < 200 ? 2 : 1)});
    ASSERT_EQ(refunded[0].code, i < 200 ? Code::ok : Code::exceeds_refundable_amount) << i << refunded[0].detail;
    auto read = this->store().transaction("sale");
    ASSERT_TRUE(read.ok());
    ASSERT_EQ(read.value().settled_amount, std::min(2 * (i + 1), 400)) << i;
  }
  this->settle();
  this->reopen();
  EXPECT_EQ(this->store().transaction("sale").value().settled_amount, 400);
  const auto report = this->verify();
  EXPECT_TRUE(report.clean()) << (report.problems.empty() ? "" : report.problems.front());
}

// --unique-references: a rail's reference is committed once per currency, deposits and
// withdrawals alike; a refused posting does not take it; a replay is a replay.
TYPED_TEST(StoreContract, AUniqueReferenceIsTakenOnceByACommittedPosting) {
  this->apply({open("ur", 0)});
  auto posting = [](core::TransactionType type, std::string id, int64_t amount, std::string reference,
                    bool unique = true) {
    Transfer p;
    p.type = type;
    p.id = std::move(id);
    p.amount = amount;
    p.reference = std::move(reference);
    p.request_hash = core::posting_request_hash(type, "ur", p);
    (type == core::TransactionType::deposit ? p.destination : p.source) = "ur";
    core::set_posting_parties(p, "USD");
    p.unique_reference = unique;
    return p;
  };
  using core::TransactionType;
  auto first = this->apply({posting(TransactionType::withdrawal, "w0", 5, "r-1"),  // refused: takes nothing
                            posting(TransactionType::deposit, "d1", 10, "r-1"),
                            posting(TransactionType::deposit, "d2", 10, "r-1"),
                            posting(TransactionType::deposit, "d1", 10, "r-1")});
  EXPECT_EQ(first[0].code, Code::insufficient_funds);
  EXPECT_EQ(first[1].code, Code::ok) << first[1].detail;
  EXPECT_EQ(first[2].code, Code::duplicate_reference);
  EXPECT_FALSE(first[2].transaction);  // not recorded: d2 stays free
  EXPECT_TRUE(first[3].replayed);
  this->settle();
  this->reopen();
  auto later = this->apply({posting(TransactionType::withdrawal, "w3", 5, "r-1"),
                            posting(TransactionType::withdrawal, "w4", 5, "r-2"),
                            posting(TransactionType::deposit, "d5", 1, "r-1", false)});  // flag off: free
  EXPECT_EQ(later[0].code, Code::duplicate_reference);
  EXPECT_EQ(later[1].code, Code::ok) << later[1].detail;
  EXPECT_EQ(later[2].code, Code::ok) << later[2].detail;
  EXPECT_EQ(this->store().account("ur").value().balance, 10 - 5 + 1);
  auto missing = this->store().transaction("d2");
  EXPECT_FALSE(missing.ok());
  this->settle();
  const auto report = this->verify();
  EXPECT_TRUE(report.clean()) << (report.problems.empty() ? "" : report.problems.front());
}

// Every event of the store from `after`, read a page of `limit` at a time.
template <typename Store>
std::vector<core::StoredEvent> all_events(Store& store, int64_t after = 0, size_t limit = 3) {
  std::vector<core::StoredEvent> out;
  while (true) {
    auto page = store.events_after(after, limit);
    EXPECT_TRUE(page.ok());
    if (!page.ok() || page.value().events.empty()) return out;
    for (auto& event : page.value().events) out.push_back(std::move(event));
    after = out.back().id;
  }
}

// Every kind of transaction's event, with available amounts apart from the balances
// (holds pending, an overdraft) and without: read back from the tables alone, each is the
// bytes it was committed with (SQLite renders most of a transaction's event from its row:
// storage/sqlite/event_rows.h).
TYPED_TEST(StoreContract, EveryEventReadsBackAsTheBytesItWasCommittedWith) {
  using core::TransactionType;
  CreateAccount overdrawn = open("carol", 10);
  overdrawn.overdraft_limit = 40;
  this->apply({open("alice", 100), open("bob", 0), overdrawn});
  this->apply({hold("h1", "alice", "bob", 30), hold("h2", "alice", "bob", 20), transfer("t1", "alice", "bob", 10),
               transfer("t0", "bob", "alice", 1)});
  this->apply({settle(TransactionType::capture, "c1", "h1", 25), settle(TransactionType::void_, "v1", "h2"),
               transfer("t2", "carol", "alice", 35), refund("r1", "t1", 4)});
  const auto committed = all_events(this->store(), 0, 100);
  ASSERT_EQ(committed.size(), 13u);
  this->settle();
  this->reopen();
  const auto stored = all_events(this->store(), 0, 100);
  ASSERT_EQ(stored.size(), committed.size());
  for (size_t i = 0; i < stored.size(); ++i) {
    EXPECT_EQ(stored[i].id, committed[i].id) << i;
    EXPECT_EQ(stored[i].type, committed[i].type) << i;
    EXPECT_EQ(stored[i].occurred_at_ms, committed[i].occurred_at_ms) << i;
    EXPECT_EQ(stored[i].body, committed[i].body) << i;
  }
}

TYPED_TEST(StoreContract, EveryCommittedChangeIsOneEventNumberedWithoutGaps) {
  this->apply({open("alice", 100), open("bob", 0)});
  this->apply({transfer("e1", "alice", "bob", 30), transfer("e2", "bob", "alice", 1'000),  // refused: no event
               transfer("e3", "bob", "alice", 5)});
  core::PatchAccount patch;
  patch.number = "bob";
  patch.overdraft_limit = 50;
  patch.operator_name = "admin";
  core::PatchAccount unchanged = patch;
  this->apply({patch});
  this->apply({unchanged});  // changes nothing: no event
  auto events = all_events(this->store());
  const std::vector<std::string> types{"account.created", "transaction.deposit", "account.created",
                                       "transaction.transfer", "transaction.transfer", "account.updated"};
  ASSERT_EQ(events.size(), types.size());
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].id, static_cast<int64_t>(i) + 1);
    EXPECT_EQ(events[i].type, types[i]);
  }
  // The body: the row and each party's balance as of that event.
  std::string e3;
  core::append_event_json(events[4], e3);
  boost::system::error_code ec;
  const auto body = boost::json::parse(e3, ec);
  ASSERT_FALSE(ec) << e3;
  EXPECT_EQ(body.at("id").as_int64(), 5);
  EXPECT_EQ(body.at("transaction").at("transactionId").as_string(), "e3");
  EXPECT_EQ(body.at("balances").at(0).at("accountNumber").as_string(), "bob");
  EXPECT_EQ(body.at("balances").at(0).at("balance").as_int64(), 25);
  EXPECT_EQ(body.at("balances").at(1).at("balance").as_int64(), 75);
  EXPECT_EQ(body.at("balances").at(1).at("version").as_int64(), 3);
  this->settle();
  this->reopen();
  // Read back from the tables alone: the same bytes (SQLite joins the row's JSON from its
  // audit record).
  const auto stored = all_events(this->store(), 0, 100);
  ASSERT_EQ(stored.size(), events.size());
  for (size_t i = 0; i < stored.size(); ++i) EXPECT_EQ(stored[i].body, events[i].body) << i;
  // Numbering goes on after a reopen, from the stored events.
  this->apply({transfer("e4", "alice", "bob", 1)});
  events = all_events(this->store(), 5, 100);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, "account.updated");
  EXPECT_EQ(events[1].id, 7);
  EXPECT_EQ(events[1].type, "transaction.transfer");
  auto page = this->store().events_after(0, 2);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page.value().oldest, 1);
  ASSERT_EQ(page.value().events.size(), 2u);
  EXPECT_EQ(page.value().events[1].id, 2);
  EXPECT_TRUE(this->store().events_after(7, 10).value().events.empty());
}

TYPED_TEST(StoreContract, RetentionDeletesTheOldestEventsButNeverTheNewest) {
  const int64_t first_at = this->now_ms_ + 1000;
  this->apply({open("r1", 0)});                                 // event 1, at first_at
  this->apply({open("r2", 0)});                                 // event 2, + 1 s
  this->apply({open("r3", 5)});                                 // events 3 and 4, + 2 s
  this->settle();
  auto pruned = this->store().prune_events(first_at + 1500, 100);  // before events 3 and 4
  ASSERT_TRUE(pruned.ok()) << pruned.error().detail;
  EXPECT_EQ(pruned.value(), 2);
  auto page = this->store().events_after(0, 10);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page.value().oldest, 3);
  ASSERT_EQ(page.value().events.size(), 2u);
  EXPECT_EQ(page.value().events[0].id, 3);
  // However old, the newest stays: a reader is told it fell behind rather than answered
  // nothing. A limit bounds one run.
  EXPECT_EQ(this->store().prune_events(first_at + 60'000, 100).value(), 1);
  page = this->store().events_after(0, 10);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page.value().oldest, 4);
  this->apply({open("r4", 0)});  // event 5
  this->settle();
  EXPECT_EQ(this->store().prune_events(first_at + 60'000, 100).value(), 1);
  EXPECT_EQ(this->store().events_after(0, 10).value().oldest, 5);
  EXPECT_EQ(this->store().prune_events(first_at + 60'000, 100).value(), 0);
}

// A clock set back gives a later event an earlier time: retention still cuts a prefix,
// so the kept ids stay gapless and a reader past the cut misses nothing unwarned.
TYPED_TEST(StoreContract, RetentionCutsOnlyAPrefixWhenTheClockWentBack) {
  const int64_t first_at = this->now_ms_ + 1000;
  this->apply({open("cb1", 0)});  // event 1, at first_at
  this->now_ms_ += 10'000;
  this->apply({open("cb2", 0)});  // event 2, + 11 s
  this->now_ms_ -= 20'000;
  this->apply({open("cb3", 0)});  // event 3, - 8 s: the clock went back
  this->apply({open("cb4", 0)});  // event 4, - 7 s
  this->settle();
  auto pruned = this->store().prune_events(first_at + 1, 100);
  ASSERT_TRUE(pruned.ok()) << pruned.error().detail;
  EXPECT_EQ(pruned.value(), 1);  // event 1 only: event 3 is old enough, event 2 is not
  auto page = this->store().events_after(0, 10);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page.value().oldest, 2);
  ASSERT_EQ(page.value().events.size(), 3u);
  EXPECT_EQ(page.value().events[1].id, 3);
  const auto report = this->verify();
  EXPECT_TRUE(report.clean()) << (report.problems.empty() ? "" : report.problems.front());
}

TYPED_TEST(StoreContract, RelayPositionsOnlyMoveForwardAndHoldRetentionBack) {
  const int64_t first_at = this->now_ms_ + 1000;
  this->apply({open("rp1", 0)});  // event 1
  this->apply({open("rp2", 0)});  // event 2
  this->apply({open("rp3", 0)});  // event 3
  this->settle();
  EXPECT_EQ(this->store().relay_position("webhook").value(), 0);  // none confirmed yet
  ASSERT_TRUE(this->store().confirm_relay("webhook", 1).ok());
  ASSERT_TRUE(this->store().confirm_relay("amqp", 2).ok());
  ASSERT_TRUE(this->store().confirm_relay("webhook", 0).ok());  // a late holder's: changes nothing
  EXPECT_EQ(this->store().relay_position("webhook").value(), 1);
  EXPECT_EQ(this->store().relay_position("amqp").value(), 2);
  // Retention stops at what the slowest relay confirmed, however old the rest.
  EXPECT_EQ(this->store().prune_events(first_at + 60'000, 100, 1).value(), 1);
  EXPECT_EQ(this->store().events_after(0, 10).value().oldest, 2);
  EXPECT_EQ(this->store().prune_events(first_at + 60'000, 100, 1).value(), 0);
  ASSERT_TRUE(this->store().confirm_relay("webhook", 3).ok());
  EXPECT_EQ(this->store().relay_position("webhook").value(), 3);
  EXPECT_EQ(this->store().prune_events(first_at + 60'000, 100, 2).value(), 1);
  EXPECT_EQ(this->store().events_after(0, 10).value().oldest, 3);
}

TYPED_TEST(StoreContract, DailyTotalsSumWhatMovedEachAccountByDayAndType) {
  using core::TransactionType;
  const int64_t day0 = core::utc_day(this->now_ms_ + 1000);
  this->apply({open("dt-a", 100), open("dt-b", 0)});           // a deposit of 100 to dt-a, day 0
  this->apply({transfer("dt-1", "dt-a", "dt-b", 30)});          // day 0
  this->apply({transfer("dt-x", "dt-a", "dt-b", 1000)});        // rejected: moves nothing
  this->apply({hold("dt-h", "dt-a", "dt-b", 20)});              // a hold moves no balance
  this->now_ms_ = (day0 + 1) * core::day_ms + 5000;             // the next UTC day
  this->apply({transfer("dt-2", "dt-b", "dt-a", 5)});
  const auto check = [&](const char* when) {
    SCOPED_TRACE(when);
    auto both = this->store().flows("dt-a", day0, day0 + 1);
    ASSERT_TRUE(both.ok()) << both.error().detail;
    ASSERT_EQ(both.value().size(), 2u);  // deposit and transfer; no hold
    const auto& deposit = both.value().at(TransactionType::deposit);
    EXPECT_EQ(deposit.credits, 100);
    EXPECT_EQ(deposit.debits, 0);
    EXPECT_EQ(deposit.count, 1);
    const auto& moved = both.value().at(TransactionType::transfer);
    EXPECT_EQ(moved.credits, 5);
    EXPECT_EQ(moved.debits, 30);
    EXPECT_EQ(moved.count, 2);
    auto first = this->store().flows("dt-a", day0, day0).value();
    EXPECT_EQ(first.at(TransactionType::transfer).credits, 0);
    EXPECT_EQ(first.at(TransactionType::transfer).debits, 30);
    auto second = this->store().flows("dt-b", day0 + 1, day0 + 1).value();
    ASSERT_EQ(second.size(), 1u);
    EXPECT_EQ(second.at(TransactionType::transfer).debits, 5);
    EXPECT_EQ(second.at(TransactionType::transfer).count, 1);
    EXPECT_EQ(this->store().flows("$issuer:USD", day0, day0).value().at(TransactionType::deposit).debits, 100);
    EXPECT_TRUE(this->store().flows("nobody", day0, day0 + 1).value().empty());
    EXPECT_TRUE(this->store().flows("dt-a", day0 + 2, day0 + 9).value().empty());
  };
  check("as committed");  // on SQLite: partly from the pending overlay
  this->settle();
  check("settled");
}

TYPED_TEST(StoreContract, VolumesCountEveryCommittedTransactionByCurrencyHourAndType) {
  using core::TransactionType;
  const int64_t hour0 = (this->now_ms_ + 1000) / core::hour_ms;
  this->apply({open("vo-a", 100), open("vo-b", 0)});     // a deposit of 100, hour 0
  this->apply({transfer("vo-1", "vo-a", "vo-b", 30)});    // hour 0
  this->apply({transfer("vo-x", "vo-a", "vo-b", 1000)});  // rejected: not counted
  this->apply({hold("vo-h", "vo-a", "vo-b", 20)});        // a hold counts (an authorization)
  this->now_ms_ = (hour0 + 2) * core::hour_ms + 5000;     // two hours later
  this->apply({transfer("vo-2", "vo-b", "vo-a", 5)});
  const auto check = [&](const char* when) {
    SCOPED_TRACE(when);
    auto all = this->store().volumes("USD", hour0, hour0 + 2);
    ASSERT_TRUE(all.ok()) << all.error().detail;
    const auto& v = all.value();
    ASSERT_EQ(v.size(), 4u);
    EXPECT_EQ(v.at({"USD", hour0, TransactionType::deposit}).amount, 100);
    EXPECT_EQ(v.at({"USD", hour0, TransactionType::transfer}).count, 1);
    EXPECT_EQ(v.at({"USD", hour0, TransactionType::transfer}).amount, 30);
    EXPECT_EQ(v.at({"USD", hour0, TransactionType::hold}).amount, 20);
    EXPECT_EQ(v.at({"USD", hour0 + 2, TransactionType::transfer}).amount, 5);
    EXPECT_EQ(this->store().volumes("USD", hour0 + 1, hour0 + 1).value().size(), 0u);
    EXPECT_TRUE(this->store().volumes("EUR", hour0, hour0 + 2).value().empty());
  };
  check("as committed");
  this->settle();
  check("settled");
}

// A day's flows past the int64 limit saturate in every store, as core's sums do, rather
// than fail the batches that touch them.
TYPED_TEST(StoreContract, ReportTotalsSaturateAtTheInt64Limit) {
  using core::TransactionType;
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  this->apply({open("sat", 0)});
  auto posting = [](TransactionType type, std::string id) {
    Transfer p;
    p.type = type;
    p.id = std::move(id);
    p.amount = kMax;
    p.request_hash = core::posting_request_hash(type, "sat", p);
    (type == TransactionType::deposit ? p.destination : p.source) = "sat";
    core::set_posting_parties(p, "USD");
    return p;
  };
  const int64_t day = core::utc_day(this->now_ms_ + 1000);
  // In three commits (so the stores add to stored rows), within the same day and hour.
  for (const auto& [type, id] : std::vector<std::pair<TransactionType, std::string>>{
           {TransactionType::deposit, "sat-1"}, {TransactionType::withdrawal, "sat-2"}, {TransactionType::deposit, "sat-3"}}) {
    auto decided = this->apply({posting(type, id)});
    ASSERT_EQ(decided.at(0).code, Code::ok) << id;
  }
  const auto check = [&](const char* when) {
    SCOPED_TRACE(when);
    auto flows = this->store().flows("sat", day, day);
    ASSERT_TRUE(flows.ok()) << flows.error().detail;
    EXPECT_EQ(flows.value().at(TransactionType::deposit).credits, kMax);  // 2 x max
    EXPECT_EQ(flows.value().at(TransactionType::deposit).count, 2);
    EXPECT_EQ(flows.value().at(TransactionType::withdrawal).debits, kMax);
    auto volumes = this->store().volumes("USD", day * 24, day * 24 + 23);
    ASSERT_TRUE(volumes.ok()) << volumes.error().detail;
    int64_t deposits = 0;
    for (const auto& [key, volume] : volumes.value()) {
      if (key.type == TransactionType::deposit) deposits = volume.amount;
    }
    EXPECT_EQ(deposits, kMax);
  };
  check("as committed");
  this->settle();
  check("settled");
}

// Risk rules' velocity (DESIGN.md section 11): each store counts the source's committed
// debits in the windows inside the commit, from the ledger file and the overlay alike.
TYPED_TEST(StoreContract, RiskVelocityCountsTheSourcesCommittedDebitsInTheWindows) {
  auto parsed = core::parse_risk_rules(R"([{"name":"burst","when":{"sourceCountLastMinuteGte":3},"then":"deny"},
                                           {"name":"daily","when":{"sourceAmountLastDayGte":100},"then":"review"}])");
  ASSERT_TRUE(parsed.ok()) << parsed.error().detail;
  auto check = std::make_shared<core::RiskCheck>();
  check->rules = std::make_shared<const core::RiskRules>(parsed.value());
  check->review_holds = true;
  check->review_hold_expiry_s = 3600;
  const auto checked = [&](Transfer t) {
    t.risk = check;
    return t;
  };
  this->apply({open("vr-a", 1000), open("vr-b", 0), open("vr-c", 0)});
  EXPECT_EQ(this->apply({checked(transfer("vr-1", "vr-a", "vr-b", 10))}).at(0).code, Code::ok);
  // Another source's debits and a hold's (a debit too) in the same windows.
  EXPECT_EQ(this->apply({checked(transfer("vr-x", "vr-b", "vr-c", 5))}).at(0).code, Code::ok);
  this->settle();  // SQLite: those in the ledger file now; the next from the overlay
  auto h = hold("vr-h", "vr-a", "vr-c", 20);
  h.risk = check;
  EXPECT_EQ(this->apply({h}).at(0).code, Code::ok);
  auto third = this->apply({checked(transfer("vr-2", "vr-a", "vr-b", 10))}).at(0);
  EXPECT_EQ(third.code, Code::risk_denied) << third.detail;
  // A minute on: the count is 1 again; the day's sum is 10 + 20 + 68 = 98 (the denied
  // vr-2 is no debit), 99 with a transfer no rule decided (counted all the same), then 100:
  // a review, which holds that single transfer.
  this->now_ms_ += core::risk_minute_ms;
  auto allowed = this->apply({checked(transfer("vr-3a", "vr-a", "vr-b", 68))}).at(0);
  ASSERT_EQ(allowed.code, Code::ok) << allowed.detail;
  EXPECT_FALSE(allowed.hold);
  ASSERT_EQ(this->apply({transfer("vr-3b", "vr-a", "vr-b", 1)}).at(0).code, Code::ok);
  this->now_ms_ += core::risk_minute_ms;  // out of the minute (no burst), in the day
  auto reviewed = this->apply({checked(transfer("vr-3", "vr-a", "vr-b", 1))}).at(0);
  ASSERT_EQ(reviewed.code, Code::ok) << reviewed.detail;
  ASSERT_TRUE(reviewed.hold);
  EXPECT_EQ(reviewed.hold->risk_rule, "daily");
  // Denied rows count nothing: a day on, all of it is out of the windows.
  this->now_ms_ += core::risk_day_ms;
  EXPECT_EQ(this->apply({checked(transfer("vr-4", "vr-a", "vr-b", 99))}).at(0).code, Code::ok);
  const auto kept = [&](const char* when) {
    SCOPED_TRACE(when);
    auto denied = this->store().transaction("vr-2");
    ASSERT_TRUE(denied.ok());
    EXPECT_EQ(denied.value().reject_code, Code::risk_denied);
    EXPECT_EQ(denied.value().risk_decision, "deny");
    EXPECT_EQ(denied.value().risk_rule, "burst");
    auto held = this->store().transaction("vr-3");
    ASSERT_TRUE(held.ok());
    EXPECT_EQ(held.value().type, core::TransactionType::hold);
    EXPECT_EQ(held.value().risk_decision, "review");
    EXPECT_EQ(held.value().risk_rule, "daily");
    EXPECT_EQ(held.value().hold_status, core::HoldStatus::pending);
  };
  kept("as committed");
  this->reopen();
  kept("reopened");
  EXPECT_TRUE(this->verify().clean());
}

TYPED_TEST(StoreContract, MissingRowsAreErrorsWithTheirCodes) {
  EXPECT_EQ(this->store().account("nobody").error().code, Code::account_not_found);
  EXPECT_EQ(this->store().transaction("nothing").error().code, Code::not_found);
  EXPECT_EQ(this->store().history("nobody", std::nullopt, 10).error().code,
            Code::account_not_found);
  EXPECT_TRUE(this->store().ping().ok());
}

TYPED_TEST(StoreContract, ReplayAndConflictAcrossBatches) {
  this->apply({open("a", 10), open("b", 0)});
  this->apply({transfer("t1", "a", "b", 3)});
  auto again = this->apply({transfer("t1", "a", "b", 3), transfer("t1", "a", "b", 4)});
  EXPECT_TRUE(again[0].replayed);
  EXPECT_EQ(again[1].code, Code::idempotency_conflict);
  auto rejected = this->apply({transfer("t2", "b", "a", 50)});
  EXPECT_EQ(rejected[0].code, Code::insufficient_funds);
  auto rejected_again = this->apply({transfer("t2", "b", "a", 50)});
  EXPECT_EQ(rejected_again[0].code, Code::insufficient_funds);
  EXPECT_TRUE(rejected_again[0].replayed);
  auto stored = this->store().transaction("t2");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored.value().status, core::TransactionStatus::rejected);
  EXPECT_EQ(stored.value().reject_code, Code::insufficient_funds);
  EXPECT_EQ(this->store().account("a").value().balance, 7);
}

TYPED_TEST(StoreContract, HistoryIsNewestFirstAndPaginates) {
  this->apply({open("a", 1000), open("b", 0), open("c", 0)});
  for (int i = 0; i < 7; ++i) {
    this->apply({transfer("ab" + std::to_string(i), "a", "b", 1),
                 transfer("bc" + std::to_string(i), "b", "c", 1)});
  }
  this->apply({transfer("rejected", "c", "a", 1'000'000)});
  std::vector<std::string> seen;
  std::optional<int64_t> cursor;
  for (int page = 0; page < 10; ++page) {
    auto result = this->store().history("b", cursor, 4);
    ASSERT_TRUE(result.ok());
    for (const auto& t : result.value().transactions) seen.push_back(t.id);
    cursor = result.value().next_cursor;
    if (!cursor) break;
  }
  ASSERT_EQ(seen.size(), 14u);
  EXPECT_EQ(seen.front(), "bc6");
  EXPECT_EQ(seen[1], "ab6");
  EXPECT_EQ(seen.back(), "ab0");
  auto a = this->store().history("a", std::nullopt, 100);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a.value().transactions.size(), 8u);  // 7 transfers and the deposit; no rejection
  EXPECT_EQ(a.value().transactions.back().type, core::TransactionType::deposit);
}

// A batch of many transfers, one rejected: every row is written whole and in order, and
// read back after a reopen (on SQLite, from the tables alone, the overlay gone).
TYPED_TEST(StoreContract, ALargeBatchIsWrittenWholeAndInOrder) {
  this->apply({open("a", 10'000), open("b", 0)});
  std::vector<Operation> batch;
  for (int i = 0; i < 75; ++i) batch.push_back(transfer("big" + std::to_string(i), "a", "b", i + 1));
  batch.push_back(transfer("too-big", "b", "a", 1'000'000));
  const auto outcomes = this->apply(batch);
  ASSERT_EQ(outcomes.size(), 76u);
  this->settle();
  this->reopen();
  int64_t balance = 0;
  for (int i = 0; i < 75; ++i) {
    auto t = this->store().transaction("big" + std::to_string(i));
    ASSERT_TRUE(t.ok()) << i;
    balance += i + 1;
    EXPECT_EQ(t.value().amount, i + 1);
    EXPECT_EQ(t.value().destination_balance_after, balance) << i;
    EXPECT_EQ(t.value().source_balance_after, 10'000 - balance) << i;
  }
  auto rejected = this->store().transaction("too-big");
  ASSERT_TRUE(rejected.ok());
  EXPECT_EQ(rejected.value().status, core::TransactionStatus::rejected);
  auto history = this->store().history("b", std::nullopt, 100);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history.value().transactions.size(), 75u);
  EXPECT_EQ(history.value().transactions.front().id, "big74");
  EXPECT_EQ(history.value().transactions.back().id, "big0");
  this->settle();
  auto report = this->verify();
  EXPECT_TRUE(report.clean()) << (report.problems.empty() ? "" : report.problems.front());
  EXPECT_GE(report.audit_records, 76);
}

TYPED_TEST(StoreContract, ScanFeedsACleanVerify) {
  this->apply({open("a", 500), open("b", 5), open("c", 0)});
  for (int i = 0; i < 50; ++i) {
    this->apply({transfer("x" + std::to_string(i), i % 2 ? "a" : "b", "c", 3),
                 transfer("y" + std::to_string(i), "c", "a", 2)});
  }
  this->settle();
  auto report = this->verify();
  EXPECT_TRUE(report.clean()) << (report.problems.empty() ? "" : report.problems.front());
  EXPECT_EQ(report.accounts, 4);  // three and the USD issuer
  EXPECT_GT(report.audit_records, 100);
}

// verify's checks 10 and 11 (core/verify.h): the reports' totals against the committed
// transactions, and the feed's ids. Damaged as a writer that lost or doubled an upsert
// would leave them, each is reported by name.
TYPED_TEST(StoreContract, VerifyChecksTheReportTotalsAndTheFeedIds) {
  this->apply({open("rv-a", 100), open("rv-b", 0)});
  this->apply({transfer("rv-1", "rv-a", "rv-b", 30), hold("rv-h", "rv-a", "rv-b", 20)});
  this->apply({core::Operation{settle(core::TransactionType::capture, "rv-c", "rv-h", 15)}});
  this->apply({core::Operation{refund("rv-r", "rv-1", 10)}});
  this->now_ms_ += 2 * core::day_ms;  // another day and hour
  this->apply({transfer("rv-2", "rv-b", "rv-a", 5)});
  this->settle();
  auto report = this->verify();
  EXPECT_TRUE(report.clean()) << (report.problems.empty() ? "" : report.problems.front());
  if (!this->damage("UPDATE daily_totals SET credits = credits + 1 WHERE account = 'rv-b' AND type = 'transfer'")) {
    return;  // the memory twin keeps no SQL database to damage
  }
  this->settle();
  const auto has = [](const core::VerifyReport& r, const std::string& text) {
    for (const auto& p : r.problems) {
      if (p.find(text) != std::string::npos) return true;
    }
    return false;
  };
  report = this->verify();
  EXPECT_EQ(report.problem_count, 2);  // both days of rv-b's transfers
  EXPECT_TRUE(has(report, "daily total of rv-b on ")) << report.problems.front();
  ASSERT_TRUE(this->damage("UPDATE daily_totals SET credits = credits - 1 WHERE account = 'rv-b' AND type = 'transfer'"));
  ASSERT_TRUE(this->damage("DELETE FROM daily_totals WHERE account = 'rv-a' AND type = 'capture'"));
  ASSERT_TRUE(this->damage("UPDATE volume_totals SET count = count + 1 WHERE type = 'refund'"));
  ASSERT_TRUE(this->damage("DELETE FROM events WHERE id = 3"));
  this->settle();
  report = this->verify();
  EXPECT_EQ(report.problem_count, 3);
  EXPECT_TRUE(has(report, "daily total of rv-a on ")) << report.problems.front();
  EXPECT_TRUE(has(report, "capture: missing")) << report.problems.front();
  EXPECT_TRUE(has(report, "volume of USD in hour ")) << report.problems.front();
  EXPECT_TRUE(has(report, ": not gapless")) << report.problems.front();
}

// Check 13 (SQLite, schema 14): an event rendered from its transaction's row needs the
// row, and what it keeps of the rest must read; a damaged one is reported, and the feed
// refuses to serve it rather than guess.
TYPED_TEST(StoreContract, EventsRenderedFromTheirRowsAreVerified) {
  if constexpr (std::is_same_v<TypeParam, SqliteBackend>) {
    this->apply({open("ev-a", 100), open("ev-b", 0)});
    this->apply({transfer("ev-1", "ev-a", "ev-b", 30), hold("ev-h", "ev-a", "ev-b", 20)});
    this->settle();
    auto report = this->verify();
    EXPECT_TRUE(report.clean()) << (report.problems.empty() ? "" : report.problems.front());
    // The hold's event keeps the available amounts (its source's is 50 of 70), the
    // transfer's none.
    ASSERT_TRUE(this->damage("UPDATE events SET body = '50;70' WHERE type = 'transaction.hold' AND body = '50,30'"));
    ASSERT_TRUE(this->damage("UPDATE events SET sequence = 999 WHERE type = 'transaction.transfer'"));
    this->settle();
    report = this->verify();
    EXPECT_EQ(report.problem_count, 2);
    const auto has = [&report](const std::string& text) {
      for (const auto& p : report.problems) {
        if (p.find(text) != std::string::npos) return true;
      }
      return false;
    };
    EXPECT_TRUE(has("kept balances are malformed: 50;70")) << report.problems.front();
    EXPECT_TRUE(has("its row 999 is not a committed transaction")) << report.problems.front();
    EXPECT_FALSE(this->store().events_after(0, 100).ok());
  }
}

TYPED_TEST(StoreContract, SurvivesReopen) {
  this->apply({open("a", 50), open("b", 0)});
  this->apply({transfer("t1", "a", "b", 20)});
  this->reopen();
  EXPECT_EQ(this->store().account("b").value().balance, 20);
  auto again = this->apply({transfer("t1", "a", "b", 20), transfer("t2", "a", "b", 5)});
  EXPECT_TRUE(again[0].replayed);
  EXPECT_EQ(again[1].code, Code::ok);
  EXPECT_EQ(this->store().account("a").value().balance, 25);
  this->settle();
  EXPECT_TRUE(this->verify().clean());
}

TYPED_TEST(StoreContract, ReadsRunWhileBatchesCommit) {
  this->apply({open("a", 1'000'000), open("b", 0)});
  std::atomic<bool> done{false};
  std::atomic<int64_t> last_version{0};
  std::atomic<bool> went_back{false};
  std::thread reader([&] {
    while (!done) {
      auto b = this->store().account("b");
      if (b.ok()) {
        if (b.value().version < last_version) went_back = true;
        last_version = b.value().version;
      }
      (void)this->store().history("b", std::nullopt, 5);
    }
  });
  for (int i = 0; i < 200; ++i) this->apply({transfer("r" + std::to_string(i), "a", "b", 1)});
  done = true;
  reader.join();
  EXPECT_FALSE(went_back);
  EXPECT_EQ(this->store().account("b").value().balance, 200);
}

}  // namespace
}  // namespace balanced::storage

namespace balanced::storage {
namespace {

TEST(SqliteStore, OneProcessOwnsALedger) {
  testing::TempDir dir;
  SqliteOptions options;
  options.path = (dir.path() / "ledger.db").string();
  auto first = open_sqlite_store(options);
  ASSERT_TRUE(first.ok()) << first.error().detail;
  auto second = open_sqlite_store(options);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().detail.find("in use by another process"), std::string::npos);
  // A read-only opening (balancectl verify while balanced runs) is allowed.
  options.read_only = true;
  auto reader = open_sqlite_store(options);
  ASSERT_TRUE(reader.ok()) << reader.error().detail;
  EXPECT_TRUE(reader.value()->ping().ok());
  EXPECT_FALSE(reader.value()->apply({}, 0).ok());
}

TEST(SqliteStore, RecoversCommittedBatchesThatWereNotMaterialized) {
  testing::TempDir dir;
  SqliteOptions options;
  options.path = (dir.path() / "ledger.db").string();
  // The materializer waits a minute: everything below stays in the commit log only.
  options.materialize_interval_ms = 60'000;
  {
    auto store = open_sqlite_store(options);
    ASSERT_TRUE(store.ok());
    std::vector<Operation> opens{open("a", 100), open("b", 0)};
    ASSERT_TRUE(store.value()->apply(opens, 1).ok());
    std::vector<Operation> moves{transfer("t1", "a", "b", 30)};
    ASSERT_TRUE(store.value()->apply(moves, 2).ok());
    // The ledger file has not seen the batches yet; reads come from the overlay.
    SqliteOptions reading = options;
    reading.read_only = true;
    auto file = open_sqlite_store(reading);
    ASSERT_TRUE(file.ok());
    EXPECT_EQ(file.value()->account("b").error().code, Code::account_not_found);
    EXPECT_EQ(store.value()->account("b").value().balance, 30);
    // Simulate kill -9: copy the files as they are now, before a clean shutdown
    // materializes them.
    for (const char* suffix : {"", "-wal", ".commitlog"}) {
      std::error_code ignored;
      std::filesystem::copy(options.path + suffix, (dir.path() / "crashed.db").string() + suffix,
                            std::filesystem::copy_options::overwrite_existing |
                                std::filesystem::copy_options::recursive,
                            ignored);
    }
  }
  SqliteOptions crashed = options;
  crashed.path = (dir.path() / "crashed.db").string();
  crashed.materialize_interval_ms = 1;
  auto recovered = open_sqlite_store(crashed);
  ASSERT_TRUE(recovered.ok()) << recovered.error().detail;
  EXPECT_EQ(recovered.value()->account("b").value().balance, 30);
  EXPECT_EQ(recovered.value()->transaction("t1").value().amount, 30);
  // Recovery materialized them into the file itself.
  SqliteOptions reading = crashed;
  reading.read_only = true;
  auto file = open_sqlite_store(reading);
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(file.value()->account("b").value().balance, 30);
  // And the next batch continues the sequence and the audit chain.
  std::vector<Operation> more{transfer("t2", "b", "a", 5)};
  auto effects = recovered.value()->apply(more, 3);
  ASSERT_TRUE(effects.ok());
  EXPECT_EQ(effects.value().outcomes[0].transaction->sequence, 3);
}

}  // namespace
}  // namespace balanced::storage

namespace balanced::storage {
namespace {

// Two stores on one database are two replicas: they commit side by side, on the same
// hot accounts, and the database alone keeps the ledger right.
class MysqlStoreTest : public ::testing::Test {
 protected:
  MysqlOptions options(const std::string& database) {
    auto& server = shared_mariadb();
    EXPECT_TRUE(server.create_database(database));
    MysqlOptions o;
    o.connection = mysql::parse_url(server.url(database)).value();
    o.committer_connections = 2;  // as a replica run with --mysql-committers 2
    return o;
  }
  core::VerifyReport verify(MysqlStore& store) {
    while (store.seal_audit(1, 1000).value().sealed > 0) {
    }
    auto report = reconcile(store);
    EXPECT_TRUE(report.ok());
    return report.ok() ? report.value() : core::VerifyReport{};
  }
  // Two stores (replicas) on one migrated database, with accounts `prefix`0.. of 1000
  // each, opened on the first.
  void open_replicas(const std::string& database, const std::string& prefix, int accounts) {
    options_ = options(database);
    ASSERT_TRUE(migrate_mysql(options_.connection).ok());
    auto first = open_mysql_store(options_);
    auto second = open_mysql_store(options_);
    ASSERT_TRUE(first.ok() && second.ok());
    first_ = std::move(first.value());
    second_ = std::move(second.value());
    std::vector<Operation> opens;
    for (int i = 0; i < accounts; ++i) opens.push_back(open(prefix + std::to_string(i), 1000));
    ASSERT_TRUE(first_->apply(opens, 1).ok());
  }
  MysqlOptions options_;
  std::unique_ptr<MysqlStore> first_;
  std::unique_ptr<MysqlStore> second_;
};

// Each replica keeps its sources' windows and reads only the rows past the last it saw
// (storage/mysql/debit_windows.h): the other replica's debits, its denials (no debit) and
// its own are all counted once.
TEST_F(MysqlStoreTest, VelocityKeptByEachReplicaCountsTheOthersDebits) {
  ASSERT_NO_FATAL_FAILURE(open_replicas("velocity_replicas", "vw", 2));
  auto parsed = core::parse_risk_rules(R"([{"name":"burst","when":{"sourceCountLastMinuteGte":3},"then":"deny"},
                                           {"name":"daily","when":{"sourceAmountLastDayGte":100},"then":"deny"}])");
  ASSERT_TRUE(parsed.ok()) << parsed.error().detail;
  auto check = std::make_shared<core::RiskCheck>();
  check->rules = std::make_shared<const core::RiskRules>(parsed.value());
  int64_t now = 1'700'000'000'000;
  const auto debit = [&](MysqlStore& store, const std::string& id, int64_t amount, int64_t at) {
    Transfer t = transfer(id, "vw0", "vw1", amount);
    t.risk = check;
    std::vector<Operation> ops{t};
    auto effects = store.apply(ops, at);
    EXPECT_TRUE(effects.ok()) << (effects.ok() ? "" : effects.error().detail);
    return effects.ok() ? effects.value().outcomes.at(0) : core::Outcome{};
  };
  EXPECT_EQ(debit(*first_, "vw-1", 10, now).code, Code::ok);           // first reads the day: 1
  EXPECT_EQ(debit(*second_, "vw-2", 10, now + 1000).code, Code::ok);   // second reads the day: 2
  auto third = debit(*first_, "vw-3", 10, now + 2000);                 // first reads vw-2: 3
  EXPECT_EQ(third.code, Code::risk_denied) << third.detail;
  now += 2 * core::risk_minute_ms;
  EXPECT_EQ(debit(*first_, "vw-4", 60, now).code, Code::ok);           // 10 + 10 + 60
  EXPECT_EQ(debit(*second_, "vw-5", 15, now + 1000).code, Code::ok);   // reads vw-3, vw-4: 95
  // A minute on (vw-4 and vw-5 out of the minute, not of the day):
  EXPECT_EQ(debit(*second_, "vw-6", 4, now + 61'000).code, Code::ok);  // its own vw-5: 99
  auto over = debit(*first_, "vw-7", 1, now + 62'000);                 // reads vw-5, vw-6: 100
  EXPECT_EQ(over.code, Code::risk_denied) << over.detail;
  EXPECT_NE(over.detail.find("daily"), std::string::npos) << over.detail;
  // A day after vw-1 and vw-2 only 60 + 15 + 4 are left: 79 + 21 reaches 100 again.
  now += core::risk_day_ms - 2 * core::risk_minute_ms + 1500;
  EXPECT_EQ(debit(*second_, "vw-8", 20, now).code, Code::ok);
  auto last = debit(*first_, "vw-9", 1, now + 1000);
  EXPECT_EQ(last.code, Code::risk_denied) << last.detail;
  const auto report = verify(*first_);
  EXPECT_TRUE(report.clean()) << (report.problems.empty() ? "" : report.problems.front());
}

// A window read whole holds the debits that left the day within DebitWindow::slack_ms
// too, so a batch whose instant is a little earlier (another committer's) counts them.
TEST_F(MysqlStoreTest, AWindowReadWholeAnswersAnEarlierInstantWithinItsSlack) {
  ASSERT_NO_FATAL_FAILURE(open_replicas("velocity_slack", "vs", 2));
  auto parsed = core::parse_risk_rules(R"([{"name":"daily","when":{"sourceAmountLastDayGte":100},"then":"deny"}])");
  ASSERT_TRUE(parsed.ok()) << parsed.error().detail;
  auto check = std::make_shared<core::RiskCheck>();
  check->rules = std::make_shared<const core::RiskRules>(parsed.value());
  const auto debit = [&](const std::string& id, int64_t amount, int64_t at) {
    Transfer t = transfer(id, "vs0", "vs1", amount);
    t.risk = check;
    std::vector<Operation> ops{t};
    auto effects = second_->apply(ops, at);  // second_ has read no window yet
    EXPECT_TRUE(effects.ok()) << (effects.ok() ? "" : effects.error().detail);
    return effects.ok() ? effects.value().outcomes.at(0).code : Code::internal;
  };
  const int64_t t0 = 1'700'000'000'000;
  std::vector<Operation> first{transfer("vs-1", "vs0", "vs1", 60)};  // no rule: nothing read
  ASSERT_TRUE(first_->apply(first, t0).ok());
  EXPECT_EQ(debit("vs-2", 30, t0 + core::risk_day_ms + 30'000), Code::ok);  // vs-1 is out: 30
  // 40 s earlier vs-1 is in the day again: 60 + 30 + 10 reaches 100.
  EXPECT_EQ(debit("vs-3", 10, t0 + core::risk_day_ms - 10'000), Code::risk_denied);
}

TEST_F(MysqlStoreTest, ReplicasCommittingAtOnceKeepEveryInvariant) {
  ASSERT_NO_FATAL_FAILURE(open_replicas("replicas", "hot", 5));

  std::atomic<int> committed{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 8; ++w) {
    MysqlStore& store = w % 2 ? *first_ : *second_;
    writers.emplace_back([&store, &committed, w] {
      for (int b = 0; b < 30; ++b) {
        std::vector<Operation> batch;
        for (int k = 0; k < 10; ++k) {
          const int from = (w + b + k) % 5;
          const int to = (from + 1 + k % 4) % 5;
          batch.push_back(transfer("w" + std::to_string(w) + "-" + std::to_string(b) + "-" +
                                       std::to_string(k),
                                   "hot" + std::to_string(from), "hot" + std::to_string(to),
                                   1 + (k * 7 + b) % 50));
        }
        // Deadlocks and lock waits are transient: retry the batch as it is.
        for (int attempt = 0; attempt < 20; ++attempt) {
          auto effects = store.apply(batch, 2);
          if (effects.ok()) {
            for (const auto& outcome : effects.value().outcomes) {
              if (outcome.code == Code::ok) ++committed;
            }
            break;
          }
          ASSERT_EQ(effects.error().code, Code::unavailable) << effects.error().detail;
        }
      }
    });
  }
  for (auto& writer : writers) writer.join();
  EXPECT_GT(committed.load(), 0);
  int64_t total = 0;
  for (int i = 0; i < 5; ++i) {
    auto account = first_->account("hot" + std::to_string(i));
    ASSERT_TRUE(account.ok());
    EXPECT_GE(account.value().balance, 0);
    total += account.value().balance;
  }
  EXPECT_EQ(total, 5000);
  auto report = verify(*first_);
  EXPECT_TRUE(report.clean()) << (report.problems.empty() ? "" : report.problems.front());
  EXPECT_EQ(report.transactions, committed.load() + 5);  // and the five deposits
  // One event per account and per committed transaction, ids 1..n without a gap, whichever
  // replica committed it.
  auto events = all_events(*second_, 0, 1000);
  ASSERT_EQ(events.size(), static_cast<size_t>(committed.load() + 5 + 5));
  for (size_t i = 0; i < events.size(); ++i) ASSERT_EQ(events[i].id, static_cast<int64_t>(i) + 1);
}

// Two replicas race to end the same holds (captures on one, voids and expiries on the
// other) and to refund one transfer: each hold ends once, whoever wins, and the refunds
// never pass the transfer's amount (the parties' row locks order them).
TEST_F(MysqlStoreTest, ReplicasRacingToEndHoldsAndRefundEndEachOnce) {
  ASSERT_NO_FATAL_FAILURE(open_replicas("hold_race", "hr", 2));
  std::vector<Operation> holds;
  for (int i = 0; i < 40; ++i) holds.push_back(hold("h" + std::to_string(i), "hr0", "hr1", 10, i % 4 == 0 ? 1 : 3600));
  holds.push_back(transfer("paid", "hr1", "hr0", 100));
  auto placed = first_->apply(holds, 1000);
  ASSERT_TRUE(placed.ok());
  std::atomic<int> ended{0};
  std::atomic<int> refunded{0};
  auto run = [&](MysqlStore& store, int side) {
    for (int i = 0; i < 40; ++i) {
      const std::string h = "h" + std::to_string(i);
      std::vector<Operation> batch;
      if (side == 0) batch.push_back(settle(core::TransactionType::capture, "c" + h, h, 4));
      if (side == 1) batch.push_back(settle(i % 4 == 0 ? core::TransactionType::expire : core::TransactionType::void_,
                                            "v" + h, h));
      batch.push_back(refund("r" + std::to_string(side) + "-" + std::to_string(i), "paid", 2));
      for (int attempt = 0; attempt < 20; ++attempt) {
        // 3 s after the holds: the 1 s ones are due (the expire), the others not.
        auto effects = store.apply(batch, 4000);
        if (effects.ok()) {
          if (effects.value().outcomes[0].code == Code::ok && !effects.value().outcomes[0].replayed) ++ended;
          if (effects.value().outcomes[1].code == Code::ok) ++refunded;
          break;
        }
        ASSERT_EQ(effects.error().code, Code::unavailable) << effects.error().detail;
      }
    }
  };
  std::thread one([&] { run(*first_, 0); });
  std::thread other([&] { run(*second_, 1); });
  one.join();
  other.join();
  EXPECT_EQ(ended.load(), 40);     // every hold once: a capture, a void or an expiry
  EXPECT_EQ(refunded.load(), 50);  // 80 refunds of 2 for a transfer of 100
  EXPECT_EQ(first_->transaction("paid").value().settled_amount, 100);
  EXPECT_EQ(first_->account("hr0").value().pending_debits, 0);
  auto report = verify(*first_);
  EXPECT_TRUE(report.clean()) << (report.problems.empty() ? "" : report.problems.front());
}

// --unique-references across replicas: the same reference under two ids, committed at once
// on two replicas, is taken by one; the other finds it taken (the key, then the rerun).
TEST_F(MysqlStoreTest, ReplicasRacingForOneReferenceCommitItOnce) {
  ASSERT_NO_FATAL_FAILURE(open_replicas("reference_race", "rr", 1));
  std::atomic<int> taken{0};
  std::atomic<int> refused{0};
  auto run = [&](MysqlStore& store, const std::string& side) {
    for (int i = 0; i < 40; ++i) {
      Transfer p;
      p.type = core::TransactionType::deposit;
      p.id = side + std::to_string(i);
      p.amount = 1;
      p.reference = "rail-" + std::to_string(i);
      p.request_hash = core::posting_request_hash(p.type, "rr0", p);
      p.destination = "rr0";
      core::set_posting_parties(p, "USD");
      p.unique_reference = true;
      for (int attempt = 0; attempt < 20; ++attempt) {
        auto effects = store.apply(std::vector<Operation>{p}, 5);
        if (!effects.ok()) {
          ASSERT_EQ(effects.error().code, Code::unavailable) << effects.error().detail;
          continue;
        }
        const Code code = effects.value().outcomes[0].code;
        ASSERT_TRUE(code == Code::ok || code == Code::duplicate_reference) << code_name(code);
        (code == Code::ok ? taken : refused)++;
        break;
      }
    }
  };
  std::thread one([&] { run(*first_, "a"); });
  std::thread other([&] { run(*second_, "b"); });
  one.join();
  other.join();
  EXPECT_EQ(taken.load(), 40);
  EXPECT_EQ(refused.load(), 40);
  EXPECT_EQ(first_->account("rr0").value().balance, 1000 + 40);
  auto report = verify(*first_);
  EXPECT_TRUE(report.clean()) << (report.problems.empty() ? "" : report.problems.front());
}

TEST_F(MysqlStoreTest, AStaleFencingTokenCannotSeal) {
  auto o = options("fencing");
  ASSERT_TRUE(migrate_mysql(o.connection).ok());
  auto store = open_mysql_store(o);
  ASSERT_TRUE(store.ok());
  std::vector<Operation> opens{open("a", 10)};
  ASSERT_TRUE(store.value()->apply(opens, 1).ok());
  ASSERT_TRUE(store.value()->seal_audit(7, 100).ok());
  std::vector<Operation> more{open("b", 10)};
  ASSERT_TRUE(store.value()->apply(more, 2).ok());
  auto stale = store.value()->seal_audit(6, 100);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().code, Code::forbidden);
  EXPECT_EQ(store.value()->unsealed_audit_records().value(), 1);  // b's opening
  auto current = store.value()->seal_audit(8, 100);
  ASSERT_TRUE(current.ok());
  EXPECT_EQ(current.value().sealed, 1);
  EXPECT_EQ(current.value().chain_head, 2);
}

// Audit records a batch has written but not yet committed hold the barrier: the sealer
// waits for them, so a record with a lower id than those already committed is chained
// too, not skipped by the watermark.
TEST_F(MysqlStoreTest, ARecordCommittingWhileTheSealerStartsIsChained) {
  auto o = options("barrier");
  ASSERT_TRUE(migrate_mysql(o.connection).ok());
  auto store = open_mysql_store(o);
  ASSERT_TRUE(store.ok());
  std::vector<Operation> opens{open("a", 10), open("b", 0)};
  ASSERT_TRUE(store.value()->apply(opens, 1).ok());
  ASSERT_GT(store.value()->seal_audit(1, 1000).value().sealed, 0);

  // A batch in flight, as a committer writes one: barrier shared, record inserted.
  auto writer = mysql::Connection::open(o.connection);
  ASSERT_TRUE(writer.ok());
  mysql::Connection& w = *writer.value();
  ASSERT_TRUE(w.exec("SET SESSION autocommit = 0").ok());
  ASSERT_TRUE(w.exec("SELECT id FROM audit_barrier WHERE id = 1 LOCK IN SHARE MODE").ok());
  ASSERT_TRUE(w.exec("INSERT INTO audit_record (operation_type, operator, operation_time, detail) "
                     "VALUES ('note', 'test', 1, '{}')").ok());
  // Later ids commit first.
  std::vector<Operation> move{transfer("t1", "a", "b", 4)};
  ASSERT_TRUE(store.value()->apply(move, 2).ok());

  std::atomic<bool> sealed{false};
  std::thread sealer([&] {
    EXPECT_TRUE(store.value()->seal_audit(1, 1000).ok());
    sealed = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(sealed.load()) << "the sealer did not wait for the batch that holds the barrier";
  ASSERT_TRUE(w.exec("COMMIT").ok());
  sealer.join();

  const auto report = verify(*store.value());
  EXPECT_TRUE(report.clean()) << (report.problems.empty() ? "" : report.problems.front());
  auto unlinked = w.query(
      "SELECT COUNT(*) FROM audit_record r "
      "WHERE NOT EXISTS (SELECT 1 FROM audit_link k WHERE k.log_id = r.log_id)");
  ASSERT_TRUE(unlinked.ok() && unlinked.value().next());
  EXPECT_EQ(unlinked.value().int64(0), 0);
  EXPECT_EQ(report.audit_records, 4);  // two openings, the note, the transfer
  EXPECT_EQ(store.value()->unsealed_audit_records().value(), 0);
}

// Under load: two replicas commit batches while a sealer runs in steps of 7 records (so
// it mostly seals from a bound it learnt earlier, and moves the watermark by what it
// read); afterwards every record is linked and the chain verifies. (The race the barrier
// closes is rare here; the test above builds it.)
TEST_F(MysqlStoreTest, SealingWhileReplicasCommitLinksEveryRecord) {
  ASSERT_NO_FATAL_FAILURE(open_replicas("sealing_under_load", "s", 4));

  std::atomic<bool> writing{true};
  std::thread sealer([&] {
    while (writing.load()) {
      auto sealed = first_->seal_audit(1, 7);
      ASSERT_TRUE(sealed.ok()) << sealed.error().detail;
    }
  });
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    MysqlStore& store = w % 2 ? *first_ : *second_;
    writers.emplace_back([&store, w] {
      for (int b = 0; b < 25; ++b) {
        std::vector<Operation> batch;
        for (int k = 0; k < 5; ++k) {
          batch.push_back(transfer("u" + std::to_string(w) + "-" + std::to_string(b) + "-" +
                                       std::to_string(k),
                                   "s" + std::to_string((w + k) % 4),
                                   "s" + std::to_string((w + k + 1) % 4), 1));
        }
        for (int attempt = 0; attempt < 20 && !store.apply(batch, 2).ok(); ++attempt) {
        }
      }
    });
  }
  for (auto& writer : writers) writer.join();
  writing = false;
  sealer.join();

  const auto report = verify(*first_);
  EXPECT_TRUE(report.clean()) << (report.problems.empty() ? "" : report.problems.front());
  auto opened = mysql::Connection::open(options_.connection);
  ASSERT_TRUE(opened.ok());
  auto counts = opened.value()->query(
      "SELECT COUNT(*), SUM(NOT EXISTS (SELECT 1 FROM audit_link k WHERE k.log_id = r.log_id)) "
      "FROM audit_record r");
  ASSERT_TRUE(counts.ok() && counts.value().next());
  EXPECT_EQ(counts.value().int64(1), 0) << "records left out of the chain";
  EXPECT_EQ(report.audit_records, counts.value().int64(0));
  EXPECT_GT(report.audit_records, 4);
}

// Version 1 rewrote each record to seal it, so its chain could run out of id order and
// leave a record unsealed below sealed ones. Version 2 keeps that chain and links the
// rest after it; its steps run again harmlessly, as after a crash halfway.
TEST_F(MysqlStoreTest, MigratingFromVersion1KeepsTheChainAndSealsTheRest) {
  auto o = options("upgrade");
  ASSERT_EQ(migrate_mysql(o.connection, 1).value(), std::make_pair(0, 1));
  auto opened = mysql::Connection::open(o.connection);
  ASSERT_TRUE(opened.ok());
  mysql::Connection& c = *opened.value();
  std::vector<core::AuditRecord> records(3);
  std::string values;
  for (size_t i = 0; i < records.size(); ++i) {
    records[i] = core::AuditRecord{.operation_type = "note", .operator_name = "v1",
                                   .operation_time_ms = static_cast<int64_t>(i), .detail = "{}"};
    values += std::string(i ? "," : "") + "('note','v1'," + std::to_string(i) + ",'{}')";
  }
  ASSERT_TRUE(c.exec("INSERT INTO audit_log (operation_type, operator, operation_time, detail) "
                     "VALUES " + values).ok());
  // Version 1's sealer chained records 1 and 3; record 2 committed after it ran.
  std::string head = core::genesis_hash();
  int64_t chain_seq = 0;
  for (int64_t log_id : {1, 3}) {
    auto& record = records[static_cast<size_t>(log_id - 1)];
    head = core::chain_audit_record(record, head);
    std::string sql = "UPDATE audit_log SET chain_seq = " + std::to_string(++chain_seq) + ", prev_hash = ";
    mysql::Connection::append_hex(sql, record.prev_hash);
    sql += ", hash = ";
    mysql::Connection::append_hex(sql, record.hash);
    sql += " WHERE log_id = " + std::to_string(log_id);
    ASSERT_TRUE(c.exec(sql).ok());
  }
  std::string chain = "UPDATE audit_chain SET sealed_seq = 2, fence = 1, head = ";
  mysql::Connection::append_hex(chain, head);
  ASSERT_TRUE(c.exec(chain + " WHERE id = 1").ok());
  ASSERT_TRUE(c.exec("COMMIT").ok());

  ASSERT_EQ(migrate_mysql(o.connection).value(), std::make_pair(1, mysql_schema_version()));
  ASSERT_TRUE(c.exec("DELETE FROM schema_migrations WHERE version >= 2").ok());
  ASSERT_TRUE(c.exec("COMMIT").ok());
  ASSERT_EQ(migrate_mysql(o.connection).value(), std::make_pair(1, mysql_schema_version()));

  auto store = open_mysql_store(o);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ(store.value()->unsealed_audit_records().value(), 1);
  std::vector<Operation> opens{open("a", 10)};
  ASSERT_TRUE(store.value()->apply(opens, 5).ok());
  auto sealed = store.value()->seal_audit(1, 1000);
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(sealed.value().sealed, 2);  // record 2, then the opening
  EXPECT_EQ(sealed.value().chain_head, 4);
  const auto report = verify(*store.value());
  EXPECT_TRUE(report.clean()) << (report.problems.empty() ? "" : report.problems.front());
  EXPECT_EQ(report.audit_records, 4);
  // The view still shows DESIGN.md's audit_log, every record with its hashes.
  auto view = c.query("SELECT COUNT(*), COUNT(hash), COUNT(prev_hash) FROM audit_log");
  ASSERT_TRUE(view.ok() && view.value().next());
  EXPECT_EQ(view.value().int64(0), 4);
  EXPECT_EQ(view.value().int64(1), 4);
  EXPECT_EQ(view.value().int64(2), 4);
  // A replica of version 1 cannot write around the barrier.
  EXPECT_FALSE(c.exec("INSERT INTO audit_log (operation_type, operator, operation_time, detail) "
                      "VALUES ('note', 'v1', 9, '{}')").ok());
}

TEST_F(MysqlStoreTest, AnOlderSchemaIsRefused) {
  auto o = options("unmigrated");
  auto store = open_mysql_store(o);
  ASSERT_TRUE(store.ok());
  const Status ping = store.value()->ping();
  EXPECT_EQ(ping.code(), Code::unavailable);
  EXPECT_NE(ping.detail().find("balancectl migrate"), std::string::npos) << ping.detail();
  std::vector<Operation> opens{open("a", 10)};
  EXPECT_EQ(store.value()->apply(opens, 1).error().code, Code::unavailable);
  auto migrated = migrate_mysql(o.connection);
  ASSERT_TRUE(migrated.ok());
  EXPECT_EQ(migrated.value(), std::make_pair(0, mysql_schema_version()));
  EXPECT_TRUE(store.value()->ping().ok());
  EXPECT_EQ(migrate_mysql(o.connection).value(),
            std::make_pair(mysql_schema_version(), mysql_schema_version()));
}

TEST_F(MysqlStoreTest, ADownDatabaseIsUnavailableThenServesAgain) {
  auto o = options("outage");
  o.connection.connect_timeout_s = 1;
  ASSERT_TRUE(migrate_mysql(o.connection).ok());
  auto store = open_mysql_store(o);
  ASSERT_TRUE(store.ok());
  std::vector<Operation> opens{open("a", 10), open("b", 0)};
  ASSERT_TRUE(store.value()->apply(opens, 1).ok());
  auto& server = shared_mariadb();
  ASSERT_EQ(server.stop(), 0);
  std::vector<Operation> move{transfer("t1", "a", "b", 4)};
  auto down = store.value()->apply(move, 2);
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().code, Code::unavailable);
  EXPECT_EQ(store.value()->ping().code(), Code::unavailable);
  EXPECT_EQ(store.value()->account("a").error().code, Code::unavailable);
  ASSERT_TRUE(server.restart()) << server.error();
  EXPECT_TRUE(store.value()->ping().ok());
  auto up = store.value()->apply(move, 3);
  ASSERT_TRUE(up.ok()) << up.error().detail;
  EXPECT_EQ(store.value()->account("b").value().balance, 4);
}

TEST(MysqlUrl, ParsesAndRedacts) {
  auto config = mysql::parse_url("mysql://app:p%40ss@db.example:3307/ledger");
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config.value().user, "app");
  EXPECT_EQ(config.value().password, "p@ss");
  EXPECT_EQ(config.value().host, "db.example");
  EXPECT_EQ(config.value().port, 3307u);
  EXPECT_EQ(config.value().database, "ledger");
  EXPECT_EQ(mysql::parse_url("mysql://app@h/d").value().port, 3306u);
  for (const char* bad : {"mysql://h/d", "mysql://u@h:0/d", "mysql://u@h:99999/d", "mysql://u@h",
                          "mysql://u@:3306/d", "postgres://u@h/d", "mysql://u@h/d`x"}) {
    EXPECT_FALSE(mysql::parse_url(bad).ok()) << bad;
  }
  EXPECT_EQ(mysql::redact_url("mysql://app:secret@h:1/d"), "mysql://app:***@h:1/d");
}

}  // namespace
}  // namespace balanced::storage
