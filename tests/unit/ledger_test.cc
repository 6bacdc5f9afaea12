// The ledger rules, with plain values: no store, no I/O.
#include "core/ledger.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <random>
#include <limits>
#include <thread>

#include "core/audit.h"
#include "core/reports.h"
#include "core/verify.h"

namespace balanced::core {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

CreateAccount open(std::string number, int64_t initial, std::string currency = "USD",
                   int64_t overdraft = 0) {
  return CreateAccount{std::move(number), std::move(currency), initial, overdraft, "test"};
}

Transfer move(std::string id, std::string from, std::string to, int64_t amount,
              std::string currency = "") {
  Transfer t{std::move(id), std::move(from), std::move(to), amount, std::move(currency), "", "", "test"};
  t.request_hash = transfer_request_hash(t);
  return t;
}

// A deposit into, or a withdrawal from, `account`, decoded as the API decodes it.
Transfer posting(TransactionType type, std::string id, std::string account, int64_t amount,
                 std::string currency = "USD", std::string reference = "") {
  Transfer p;
  p.type = type;
  p.id = std::move(id);
  p.amount = amount;
  p.reference = std::move(reference);
  p.operator_name = "test";
  p.request_hash = posting_request_hash(type, account, p);
  (type == TransactionType::deposit ? p.destination : p.source) = account;
  p.currency = currency;
  (type == TransactionType::deposit ? p.source : p.destination) = issuer_account_number(currency);
  return p;
}

// Applies batches the way a store does, keeping the state between them.
class Ledger {
 public:
  std::vector<Outcome> apply(std::vector<Operation> operations) {
    LedgerState state;
    for (const auto& id : transaction_ids(operations)) {
      if (auto it = transactions_.find(id); it != transactions_.end()) state.existing.emplace(id, it->second);
    }
    for (const auto& number : required_accounts(operations, state)) {
      if (auto it = accounts_.find(number); it != accounts_.end()) state.accounts.emplace(number, it->second);
    }
    now_ += step_ms_;
    // As a store does: the risk rules' sources, with their committed debits in the windows.
    for (const auto& source : velocity_sources(operations, state)) {
      Velocity& velocity = state.velocity[source];
      for (const auto& t : committed_) {
        if (t.source == source && counts_as_debit(t.type)) count_debit(velocity, t.created_at_ms, t.amount, now_);
      }
    }
    BatchEffects effects = apply_batch(operations, state, now_);
    check_events(effects);
    for (const auto& a : effects.created) {
      EXPECT_FALSE(accounts_.contains(a.number));
      accounts_[a.number] = a;
    }
    for (const auto& a : effects.updated) accounts_[a.number] = a;
    for (auto& t : effects.transactions) {
      t.sequence = ++sequence_;
      transactions_[t.id] = t;
      if (t.status == TransactionStatus::committed) committed_.push_back(t);
    }
    for (const auto& t : effects.transaction_updates) {
      transactions_[t.id] = t;
      for (auto& row : committed_) {
        if (row.id == t.id) row = t;
      }
    }
    attach_sequences(effects);
    audit_head_ = seal_audit(effects.audit, effects.transactions, audit_head_);
    for (auto& r : effects.audit) {
      r.log_id = static_cast<int64_t>(audit_.size()) + 1;
      audit_.push_back(r);
    }
    return effects.outcomes;
  }
  // The change feed's events (DESIGN.md section 11): one per committed row of the batch,
  // in row order, each party's balance and version as its row left them; one per account
  // created (issuers aside) and per PATCH that changed something; none for a rejection.
  static void check_events(const BatchEffects& effects) {
    size_t rows = 0;
    size_t accounts = 0;
    int64_t last_row = -1;
    for (const auto& event : effects.events) {
      if (event.kind != EventKind::transaction) {
        ++accounts;
        ASSERT_TRUE(event.account);
        ASSERT_EQ(event.balances.size(), 1u);
        EXPECT_EQ(event.balances[0].account_number, event.account->number);
        continue;
      }
      ++rows;
      ASSERT_GT(event.transaction_index, last_row);
      last_row = event.transaction_index;
      const Transaction& row = effects.transactions.at(static_cast<size_t>(event.transaction_index));
      EXPECT_EQ(row.status, TransactionStatus::committed);
      ASSERT_EQ(event.balances.size(), 2u);
      EXPECT_EQ(event.balances[0].account_number, row.source);
      EXPECT_EQ(event.balances[1].account_number, row.destination);
      EXPECT_EQ(event.balances[0].balance, row.source_balance_after) << row.id;
      EXPECT_EQ(event.balances[0].version, row.source_version_after) << row.id;
      EXPECT_EQ(event.balances[1].balance, row.destination_balance_after) << row.id;
      EXPECT_EQ(event.balances[1].version, row.destination_version_after) << row.id;
    }
    size_t committed = 0;
    for (const auto& t : effects.transactions) committed += t.status == TransactionStatus::committed;
    EXPECT_EQ(rows, committed);
    size_t created = 0;
    for (const auto& a : effects.created) created += !is_issuer_account(a.number);
    EXPECT_GE(accounts, created);
  }
  Outcome apply_one(Operation operation) { return apply({std::move(operation)}).at(0); }
  const Account& account(const std::string& number) { return accounts_.at(number); }
  const Transaction& transaction(const std::string& id) { return transactions_.at(id); }
  // Each batch commits this long after the one before.
  void set_step_ms(int64_t step_ms) { step_ms_ = step_ms; }
  int64_t next_commit_ms() const { return now_ + step_ms_; }

  VerifyReport verify() {
    Verifier verifier;
    for (const auto& [number, account] : accounts_) verifier.add_account(account);
    for (const auto& t : committed_) verifier.add_transaction(t);
    for (const auto& r : audit_) verifier.add_audit(r);
    return verifier.finish();
  }
  std::vector<AuditRecord>& audit() { return audit_; }

 private:
  std::map<std::string, Account> accounts_;
  std::map<std::string, Transaction> transactions_;
  std::vector<Transaction> committed_;
  std::vector<AuditRecord> audit_;
  std::string audit_head_;
  int64_t now_ = 1'700'000'000'000;
  int64_t step_ms_ = 1;
  int64_t sequence_ = 0;
};

TEST(Audit, Sha256MatchesTheStandardVectorsOnEveryThread) {
  // FIPS 180-2 examples, and the empty string; from two threads (one context each).
  const auto check = [] {
    EXPECT_EQ(core::to_hex(core::sha256("abc")),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(core::to_hex(core::sha256("")),
              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(core::to_hex(core::sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  };
  check();
  std::thread other(check);
  other.join();
}

TEST(Ledger, InitialBalanceIsADepositFromTheIssuer) {
  Ledger ledger;
  auto outcome = ledger.apply_one(open("alice", 500));
  ASSERT_EQ(outcome.code, Code::ok);
  EXPECT_EQ(outcome.account->balance, 500);
  EXPECT_EQ(outcome.account->version, 1);
  ASSERT_TRUE(outcome.transaction);
  EXPECT_EQ(outcome.transaction->type, TransactionType::deposit);
  EXPECT_EQ(ledger.account("$issuer:USD").balance, -500);
  EXPECT_TRUE(ledger.verify().clean());
}

TEST(Ledger, ZeroInitialBalanceHasNoDepositAndVersionZero) {
  Ledger ledger;
  auto outcome = ledger.apply_one(open("bob", 0));
  ASSERT_EQ(outcome.code, Code::ok);
  EXPECT_FALSE(outcome.transaction);
  EXPECT_EQ(outcome.account->version, 0);
  EXPECT_TRUE(ledger.verify().clean());
}

TEST(Ledger, DuplicateAccountIsRejected) {
  Ledger ledger;
  ASSERT_EQ(ledger.apply_one(open("alice", 1)).code, Code::ok);
  EXPECT_EQ(ledger.apply_one(open("alice", 1)).code, Code::account_exists);
  EXPECT_EQ(ledger.account("alice").balance, 1);
}

TEST(Ledger, TransferMovesMoneyAndRecordsBalancesAfter) {
  Ledger ledger;
  ledger.apply({open("a", 100), open("b", 0)});
  auto outcome = ledger.apply_one(move("t1", "a", "b", 30));
  ASSERT_EQ(outcome.code, Code::ok);
  EXPECT_EQ(outcome.transaction->source_balance_after, 70);
  EXPECT_EQ(outcome.transaction->destination_balance_after, 30);
  EXPECT_EQ(ledger.account("a").balance, 70);
  EXPECT_EQ(ledger.account("b").balance, 30);
  EXPECT_EQ(ledger.account("a").version, 2);
  EXPECT_EQ(ledger.account("b").version, 1);
  EXPECT_TRUE(ledger.verify().clean());
}

TEST(Ledger, OverdraftLimitIsTheFloor) {
  Ledger ledger;
  ledger.apply({open("a", 10, "USD", 5), open("b", 0)});
  EXPECT_EQ(ledger.apply_one(move("t1", "a", "b", 15)).code, Code::ok);
  EXPECT_EQ(ledger.account("a").balance, -5);
  auto refused = ledger.apply_one(move("t2", "a", "b", 1));
  EXPECT_EQ(refused.code, Code::insufficient_funds);
  EXPECT_EQ(refused.transaction->status, TransactionStatus::rejected);
  EXPECT_EQ(ledger.account("a").balance, -5);
  EXPECT_TRUE(ledger.verify().clean());
}

TEST(Ledger, MaximalOverdraftDoesNotOverflow) {
  Ledger ledger;
  ledger.apply({open("a", 0, "USD", kMax), open("b", 0)});
  EXPECT_EQ(ledger.apply_one(move("t1", "a", "b", kMax)).code, Code::ok);
  EXPECT_EQ(ledger.account("a").balance, -kMax);
  // One more would take a below -limit (and below INT64_MIN + 1): refused, not wrapped.
  const Code code = ledger.apply_one(move("t2", "a", "b", 1)).code;
  EXPECT_TRUE(code == Code::insufficient_funds || code == Code::balance_overflow);
  EXPECT_EQ(ledger.account("a").balance, -kMax);
}

TEST(Ledger, DestinationOverflowIsRejected) {
  Ledger ledger;
  ledger.apply({open("rich", kMax), open("other", kMax, "USD", 0)});
  // The issuer has issued 2 * kMax - that overflows: the second open is refused.
  EXPECT_EQ(ledger.account("$issuer:USD").balance, -kMax);
  ledger.apply({open("c", 0, "EUR", kMax), open("d", kMax, "EUR")});
  auto outcome = ledger.apply_one(move("t1", "c", "d", 1));
  EXPECT_EQ(outcome.code, Code::balance_overflow);
  EXPECT_EQ(ledger.account("d").balance, kMax);
  EXPECT_TRUE(ledger.verify().clean());
}

TEST(Ledger, IssuerCannotIssueBeyondInt64) {
  Ledger ledger;
  EXPECT_EQ(ledger.apply_one(open("a", kMax)).code, Code::ok);
  auto second = ledger.apply_one(open("b", kMax));
  EXPECT_EQ(second.code, Code::balance_overflow);
  auto third = ledger.apply_one(open("c", 1));
  EXPECT_EQ(third.code, Code::ok);
  EXPECT_EQ(ledger.account("$issuer:USD").balance, -kMax - 1);
  EXPECT_TRUE(ledger.verify().clean());
}

TEST(Ledger, SameAccountIsRejectedAndRecorded) {
  Ledger ledger;
  ledger.apply({open("a", 10)});
  auto outcome = ledger.apply_one(move("t1", "a", "a", 1));
  EXPECT_EQ(outcome.code, Code::same_account);
  EXPECT_EQ(outcome.transaction->status, TransactionStatus::rejected);
}

TEST(Ledger, CurrencyMismatch) {
  Ledger ledger;
  ledger.apply({open("usd", 10), open("eur", 10, "EUR")});
  EXPECT_EQ(ledger.apply_one(move("t1", "usd", "eur", 1)).code, Code::currency_mismatch);
  ledger.apply({open("usd2", 0)});
  EXPECT_EQ(ledger.apply_one(move("t2", "usd", "usd2", 1, "EUR")).code, Code::currency_mismatch);
  EXPECT_EQ(ledger.apply_one(move("t3", "usd", "usd2", 1, "USD")).code, Code::ok);
  EXPECT_TRUE(ledger.verify().clean());
}

TEST(Ledger, UnknownAccountIsRejectedAndSticky) {
  Ledger ledger;
  ledger.apply({open("a", 10)});
  auto first = ledger.apply_one(move("t1", "a", "ghost", 1));
  EXPECT_EQ(first.code, Code::account_not_found);
  ledger.apply({open("ghost", 0)});
  // The same id gets the same answer, even though the account exists now.
  auto retry = ledger.apply_one(move("t1", "a", "ghost", 1));
  EXPECT_EQ(retry.code, Code::account_not_found);
  EXPECT_TRUE(retry.replayed);
  EXPECT_EQ(ledger.account("a").balance, 10);
}

TEST(Ledger, ReplayReturnsTheOriginalOutcome) {
  Ledger ledger;
  ledger.apply({open("a", 10), open("b", 0)});
  auto first = ledger.apply_one(move("t1", "a", "b", 4));
  auto again = ledger.apply_one(move("t1", "a", "b", 4));
  EXPECT_EQ(again.code, Code::ok);
  EXPECT_TRUE(again.replayed);
  EXPECT_EQ(again.transaction->sequence, first.transaction->sequence);
  EXPECT_EQ(ledger.account("a").balance, 6);
}

TEST(Ledger, SameIdDifferentPayloadConflicts) {
  Ledger ledger;
  ledger.apply({open("a", 10), open("b", 0)});
  ledger.apply_one(move("t1", "a", "b", 4));
  EXPECT_EQ(ledger.apply_one(move("t1", "a", "b", 5)).code, Code::idempotency_conflict);
  EXPECT_EQ(ledger.apply_one(move("t1", "b", "a", 4)).code, Code::idempotency_conflict);
  EXPECT_EQ(ledger.account("a").balance, 6);
}

TEST(Ledger, OperationsInABatchApplyInOrder) {
  Ledger ledger;
  ledger.apply({open("a", 10), open("b", 0)});
  // b is empty until the first transfer lands; the second depends on it.
  auto outcomes = ledger.apply({move("t1", "a", "b", 10), move("t2", "b", "a", 7),
                                move("t3", "b", "a", 4), move("t1", "a", "b", 10),
                                move("t1", "a", "b", 9)});
  EXPECT_EQ(outcomes[0].code, Code::ok);
  EXPECT_EQ(outcomes[1].code, Code::ok);
  EXPECT_EQ(outcomes[2].code, Code::insufficient_funds);
  EXPECT_TRUE(outcomes[3].replayed);
  EXPECT_EQ(outcomes[3].code, Code::ok);
  EXPECT_EQ(outcomes[4].code, Code::idempotency_conflict);
  EXPECT_EQ(ledger.account("a").balance, 7);
  EXPECT_EQ(ledger.account("b").balance, 3);
  EXPECT_TRUE(ledger.verify().clean());
}

TEST(Ledger, AccountCreatedAndUsedInOneBatch) {
  Ledger ledger;
  auto outcomes = ledger.apply({open("a", 5), open("b", 0), move("t1", "a", "b", 5),
                                open("a", 1)});
  EXPECT_EQ(outcomes[2].code, Code::ok);
  EXPECT_EQ(outcomes[3].code, Code::account_exists);
  EXPECT_EQ(ledger.account("b").balance, 5);
  EXPECT_TRUE(ledger.verify().clean());
}

TEST(Ledger, RequiredAccountsAreSortedAndUnique) {
  std::vector<Operation> operations{move("1", "z", "a", 1), move("2", "a", "m", 1), open("b", 0)};
  EXPECT_EQ(required_accounts(operations),
            (std::vector<std::string>{"$issuer:USD", "a", "b", "m", "z"}));
}

// Names repeated across a large batch, and issuers and deposit ids the functions make
// themselves, come out once each and in order.
TEST(Ledger, RequiredAccountsAndIdsOfALargeBatchAreSortedAndUnique) {
  std::vector<Operation> operations{open("q", 0, "EUR"), open("c", 5, "USD")};
  for (int i = 0; i < 3000; ++i) {
    operations.push_back(
        move("t" + std::to_string(i % 1000), i % 2 ? "q" : "c", "a" + std::to_string(i % 7), 1));
  }
  std::vector<std::string> accounts{"$issuer:EUR", "$issuer:USD", "c", "q"};
  for (int i = 0; i < 7; ++i) accounts.push_back("a" + std::to_string(i));
  std::sort(accounts.begin(), accounts.end());
  EXPECT_EQ(required_accounts(operations), accounts);
  std::vector<std::string> ids{"$deposit:c", "$deposit:q"};
  for (int i = 0; i < 1000; ++i) ids.push_back("t" + std::to_string(i));
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(transaction_ids(operations), ids);
}

TEST(Ledger, DepositsAndWithdrawalsMoveMoneyInAndOutOfCirculation) {
  Ledger ledger;
  ledger.apply({open("a", 0), open("b", 0, "USD", 50)});
  auto in = ledger.apply_one(posting(TransactionType::deposit, "d1", "a", 300, "USD", "rail-1"));
  ASSERT_EQ(in.code, Code::ok) << in.detail;
  EXPECT_EQ(in.transaction->type, TransactionType::deposit);
  EXPECT_EQ(in.transaction->source, "$issuer:USD");
  EXPECT_EQ(in.transaction->destination, "a");
  EXPECT_EQ(in.transaction->reference, "rail-1");
  EXPECT_EQ(ledger.account("a").balance, 300);
  EXPECT_EQ(ledger.account("$issuer:USD").balance, -300);
  EXPECT_EQ(in.transaction->destination_version_after, ledger.account("a").version);
  EXPECT_EQ(in.transaction->source_version_after, ledger.account("$issuer:USD").version);
  auto out = ledger.apply_one(posting(TransactionType::withdrawal, "w1", "a", 120));
  ASSERT_EQ(out.code, Code::ok) << out.detail;
  EXPECT_EQ(out.transaction->source, "a");
  EXPECT_EQ(out.transaction->destination, "$issuer:USD");
  EXPECT_EQ(ledger.account("a").balance, 180);
  EXPECT_EQ(ledger.account("$issuer:USD").balance, -180);
  // A withdrawal checks what the account may spend: its balance down to -overdraftLimit.
  auto too_much = ledger.apply_one(posting(TransactionType::withdrawal, "w2", "a", 181));
  EXPECT_EQ(too_much.code, Code::insufficient_funds);
  EXPECT_EQ(too_much.transaction->status, TransactionStatus::rejected);
  EXPECT_EQ(ledger.apply_one(posting(TransactionType::withdrawal, "w3", "b", 50)).code, Code::ok);
  EXPECT_EQ(ledger.account("b").balance, -50);
  // Replays and conflicts, by id across kinds.
  auto again = ledger.apply_one(posting(TransactionType::deposit, "d1", "a", 300, "USD", "rail-1"));
  EXPECT_TRUE(again.replayed);
  EXPECT_EQ(ledger.account("a").balance, 180);
  EXPECT_EQ(ledger.apply_one(posting(TransactionType::deposit, "d1", "a", 300, "USD", "rail-2")).code,
            Code::idempotency_conflict);
  EXPECT_EQ(ledger.apply_one(posting(TransactionType::withdrawal, "d1", "a", 300, "USD", "rail-1")).code,
            Code::idempotency_conflict);
  EXPECT_EQ(ledger.apply_one(move("d1", "a", "b", 300)).code, Code::idempotency_conflict);
  const auto report = ledger.verify();
  EXPECT_TRUE(report.clean()) << report.problems.front();
}

TEST(Ledger, ADepositNamesItsAccountWhenItOrItsCurrencyIsWrong) {
  Ledger ledger;
  ledger.apply({open("usd", 10), open("eur", 10, "EUR")});
  auto missing = ledger.apply_one(posting(TransactionType::deposit, "x1", "nobody", 5));
  EXPECT_EQ(missing.code, Code::account_not_found);
  EXPECT_NE(missing.detail.find("nobody"), std::string::npos) << missing.detail;
  EXPECT_EQ(missing.transaction->status, TransactionStatus::rejected);  // recorded
  auto unknown_currency = ledger.apply_one(posting(TransactionType::withdrawal, "x2", "usd", 5, "JPY"));
  EXPECT_EQ(unknown_currency.code, Code::currency_mismatch) << unknown_currency.detail;
  auto other_currency = ledger.apply_one(posting(TransactionType::deposit, "x3", "usd", 5, "EUR"));
  EXPECT_EQ(other_currency.code, Code::currency_mismatch) << other_currency.detail;
  EXPECT_EQ(ledger.account("usd").balance, 10);
  EXPECT_TRUE(ledger.verify().clean());
}

TEST(Ledger, ThePayloadHashTellsKindsAndOmittedFieldsApart) {
  Transfer base;
  base.amount = 5;
  const std::string deposit = posting_request_hash(TransactionType::deposit, "a", base);
  EXPECT_NE(deposit, posting_request_hash(TransactionType::withdrawal, "a", base));
  EXPECT_NE(deposit, posting_request_hash(TransactionType::deposit, "b", base));
  Transfer with_currency = base;
  with_currency.currency = "USD";
  EXPECT_NE(deposit, posting_request_hash(TransactionType::deposit, "a", with_currency));
  Transfer with_metadata = base;
  with_metadata.metadata = "{}";
  EXPECT_NE(deposit, posting_request_hash(TransactionType::deposit, "a", with_metadata));
  Transfer stamped = base;
  stamped.client_timestamp = "2026-12-06T00:00:00Z";
  EXPECT_EQ(deposit, posting_request_hash(TransactionType::deposit, "a", stamped));
  // A transfer's hash is the first release's, so a retry across the upgrade replays.
  Transfer transfer{"t", "a", "b", 5, "", "", "", ""};
  EXPECT_EQ(transfer_request_hash(transfer), to_hex(sha256("a\nb\n5\n")));
}

PatchAccount patch(std::string number) {
  PatchAccount p;
  p.number = std::move(number);
  p.operator_name = "admin";
  return p;
}

TEST(Ledger, APatchChangesLimitMetadataAndStatusAsOneAuditedVersion) {
  Ledger ledger;
  ledger.apply({open("a", 100), open("b", 0)});
  auto p = patch("a");
  p.overdraft_limit = 50;
  p.metadata_patch = R"({"owner":"ann","tier":"gold"})";
  p.reason = "credit review";
  auto changed = ledger.apply_one(p);
  ASSERT_EQ(changed.code, Code::ok) << changed.detail;
  EXPECT_EQ(changed.account->version, 2);
  EXPECT_EQ(changed.account->overdraft_limit, 50);
  EXPECT_EQ(changed.account->metadata, R"({"owner":"ann","tier":"gold"})");
  EXPECT_EQ(ledger.audit().back().operation_type, "account_update");
  EXPECT_NE(ledger.audit().back().detail.find(R"("overdraftLimit":{"from":0,"to":50})"), std::string::npos)
      << ledger.audit().back().detail;
  // The same PATCH again changes nothing: no version, no record.
  const size_t records = ledger.audit().size();
  auto again = ledger.apply_one(p);
  EXPECT_EQ(again.code, Code::ok);
  EXPECT_EQ(again.account->version, 2);
  EXPECT_EQ(ledger.audit().size(), records);
  // A merge patch: null deletes a key.
  auto merge = patch("a");
  merge.metadata_patch = R"({"tier":null})";
  EXPECT_EQ(ledger.apply_one(merge).account->metadata, R"({"owner":"ann"})");
  // If-Match.
  auto stale = patch("a");
  stale.overdraft_limit = 0;
  stale.expected_version = 2;
  EXPECT_EQ(ledger.apply_one(stale).code, Code::version_mismatch);
  stale.expected_version = 3;
  EXPECT_EQ(ledger.apply_one(stale).code, Code::ok);
  EXPECT_EQ(ledger.apply_one(patch("nobody")).code, Code::account_not_found);
  EXPECT_EQ(ledger.apply_one(patch("$issuer:USD")).code, Code::account_not_found);
  const auto report = ledger.verify();
  EXPECT_TRUE(report.clean()) << report.problems.front();
}

TEST(Ledger, FrozenTakesCreditsOnlyAndClosedIsFinal) {
  Ledger ledger;
  ledger.apply({open("a", 100), open("b", 100)});
  auto freeze = patch("a");
  freeze.status = AccountStatus::frozen;
  ASSERT_EQ(ledger.apply_one(freeze).code, Code::ok);
  auto out = ledger.apply_one(move("f1", "a", "b", 10));
  EXPECT_EQ(out.code, Code::account_frozen);
  EXPECT_EQ(out.transaction->status, TransactionStatus::rejected);  // recorded
  EXPECT_EQ(ledger.apply_one(posting(TransactionType::withdrawal, "f2", "a", 10)).code, Code::account_frozen);
  EXPECT_EQ(ledger.apply_one(move("f3", "b", "a", 10)).code, Code::ok);  // credits go in
  EXPECT_EQ(ledger.apply_one(posting(TransactionType::deposit, "f4", "a", 5)).code, Code::ok);
  auto close = patch("a");
  close.status = AccountStatus::closed;
  EXPECT_EQ(ledger.apply_one(close).code, Code::account_not_empty);
  auto thaw = patch("a");
  thaw.status = AccountStatus::active;
  ASSERT_EQ(ledger.apply_one(thaw).code, Code::ok);
  ASSERT_EQ(ledger.apply_one(posting(TransactionType::withdrawal, "f5", "a", 115)).code, Code::ok);
  ASSERT_EQ(ledger.apply_one(close).code, Code::ok);
  EXPECT_EQ(ledger.apply_one(move("f6", "b", "a", 1)).code, Code::account_closed);
  EXPECT_EQ(ledger.apply_one(posting(TransactionType::deposit, "f7", "a", 1)).code, Code::account_closed);
  EXPECT_EQ(ledger.apply_one(thaw).code, Code::invalid_state_transition);
  EXPECT_EQ(ledger.apply_one(close).code, Code::ok);  // closing it again changes nothing
  auto limit = patch("a");
  limit.overdraft_limit = 10;
  EXPECT_EQ(ledger.apply_one(limit).code, Code::invalid_state_transition);
  const auto report = ledger.verify();
  EXPECT_TRUE(report.clean()) << report.problems.front();
}

TEST(Ledger, ASavingsAccountIsNeverOverdrawnAndALoweredLimitKeepsTheDebt) {
  Ledger ledger;
  CreateAccount savings = open("s", 10);
  savings.type = AccountType::savings;
  CreateAccount overdrawn = savings;
  overdrawn.number = "s2";
  overdrawn.overdraft_limit = 5;
  auto refused = ledger.apply({savings, overdrawn, open("c", 0, "USD", 100)});
  EXPECT_EQ(refused[0].code, Code::ok);
  EXPECT_EQ(refused[1].code, Code::invalid_request);
  auto limit = patch("s");
  limit.overdraft_limit = 1;
  EXPECT_EQ(ledger.apply_one(limit).code, Code::invalid_request);
  ASSERT_EQ(ledger.apply_one(move("c1", "c", "s", 80)).code, Code::ok);  // c at -80
  auto lower = patch("c");
  lower.overdraft_limit = 20;
  ASSERT_EQ(ledger.apply_one(lower).code, Code::ok);
  EXPECT_EQ(ledger.account("c").balance, -80);  // the debt stays; available is negative
  EXPECT_LT(available(ledger.account("c")), 0);
  EXPECT_EQ(ledger.apply_one(move("c2", "c", "s", 1)).code, Code::insufficient_funds);
  EXPECT_EQ(ledger.apply_one(move("c3", "s", "c", 1)).code, Code::ok);  // credits accepted
  // verify: the debt was within the limit in force when it was made.
  const auto report = ledger.verify();
  EXPECT_TRUE(report.clean()) << report.problems.front();
}

TEST(Verify, DetectsAVersionAfterThatDisagreesWithTheReplay) {
  Verifier verifier;
  verifier.add_account(Account{.number = "$issuer:USD", .currency = "USD", .balance = -5,
                               .overdraft_limit = issuer_overdraft_limit, .version = 1});
  verifier.add_account(Account{.number = "a", .currency = "USD", .balance = 5, .version = 1});
  verifier.add_transaction(Transaction{.sequence = 1, .id = "d", .type = TransactionType::deposit,
                                      .source = "$issuer:USD", .destination = "a", .amount = 5,
                                      .currency = "USD", .source_balance_after = -5,
                                      .destination_balance_after = 5, .source_version_after = 1,
                                      .destination_version_after = 2});
  const auto report = verifier.finish();
  ASSERT_EQ(report.problem_count, 1);
  EXPECT_NE(report.problems.front().find("account a: version 1"), std::string::npos) << report.problems.front();
}

// SQLite's writer sums a chunk's daily totals in a hash map: the same sums as the
// ordered map (MySQL's, and the verifier's), key by key, saturating alike.
TEST(Reports, UnorderedDailyTotalsSumAsTheOrderedOnes) {
  std::mt19937_64 random(20261208);
  DailyTotals ordered;
  UnorderedDailyTotals unordered;
  const TransactionType types[] = {TransactionType::transfer, TransactionType::deposit, TransactionType::hold,
                                   TransactionType::capture, TransactionType::refund};
  for (int i = 0; i < 5000; ++i) {
    const Transaction t{
        .id = "t" + std::to_string(i),
        .type = types[random() % 5],
        .source = "account-with-a-long-number-" + std::to_string(random() % 40),
        .destination = "b" + std::to_string(random() % 40),
        .amount = random() % 100 == 0 ? std::numeric_limits<int64_t>::max() : static_cast<int64_t>(random() % 1000),
        .status = random() % 10 == 0 ? TransactionStatus::rejected : TransactionStatus::committed,
        .created_at_ms = static_cast<int64_t>(random() % (5 * day_ms)) - day_ms};
    add_daily_totals(t, ordered);
    add_daily_totals(t, unordered);
  }
  ASSERT_EQ(unordered.size(), ordered.size());
  for (const auto& [key, total] : ordered) {
    const auto found = unordered.find(key);
    ASSERT_NE(found, unordered.end()) << key.account << " " << key.day;
    EXPECT_EQ(found->second.credits, total.credits);
    EXPECT_EQ(found->second.debits, total.debits);
    EXPECT_EQ(found->second.count, total.count);
  }
}

TEST(Verify, ComparesTheStoredReportTotalsAndFeedIdsWithTheTransactions) {
  const Transaction deposit{.sequence = 1, .id = "d", .type = TransactionType::deposit, .source = "$issuer:USD",
                            .destination = "a", .amount = 5, .currency = "USD", .source_balance_after = -5,
                            .destination_balance_after = 5, .created_at_ms = 3 * day_ms + 7};
  const DailyKey a{.account = "a", .day = 3, .type = TransactionType::deposit};
  const DailyKey issuer{.account = "$issuer:USD", .day = 3, .type = TransactionType::deposit};
  const VolumeKey usd{.currency = "USD", .hour = 72, .type = TransactionType::deposit};
  const auto run = [&](bool reports, const std::function<void(Verifier&)>& stored) {
    Verifier verifier;
    if (reports) verifier.check_reports();
    verifier.add_account(Account{.number = "a", .currency = "USD", .balance = 5, .version = 1});
    verifier.add_account(Account{.number = "$issuer:USD", .currency = "USD", .balance = -5,
                                 .overdraft_limit = issuer_overdraft_limit, .version = 1});
    verifier.add_transaction(deposit);
    stored(verifier);
    return verifier.finish();
  };
  const auto whole = [&](Verifier& v) {
    v.add_daily_total(a, {.credits = 5, .count = 1});
    v.add_daily_total(issuer, {.debits = 5, .count = 1});
    v.add_volume(usd, {.count = 1, .amount = 2});  // two slots of one hour
    v.add_volume(usd, {.count = 0, .amount = 3});
    v.add_event_span(4, 9, 6, 9);
  };
  EXPECT_TRUE(run(true, whole).clean()) << run(true, whole).problems.front();
  EXPECT_TRUE(run(false, [](Verifier&) {}).clean());  // a store that keeps no reports
  const auto one = [&](const std::function<void(Verifier&)>& stored, const std::string& says) {
    const auto report = run(true, stored);
    ASSERT_EQ(report.problem_count, 1) << says;
    EXPECT_NE(report.problems.front().find(says), std::string::npos) << report.problems.front();
  };
  one([&](Verifier& v) {
        v.add_daily_total(a, {.credits = 4, .count = 1});
        v.add_daily_total(issuer, {.debits = 5, .count = 1});
        v.add_volume(usd, {.count = 1, .amount = 5});
      },
      "daily total of a on 1970-01-04, deposit: stored credits 4, debits 0, count 1, the transactions sum to "
      "credits 5");
  one([&](Verifier& v) {
        v.add_daily_total(a, {.credits = 5, .count = 1});
        v.add_volume(usd, {.count = 1, .amount = 5});
      },
      "daily total of $issuer:USD on 1970-01-04, deposit: missing");
  one([&](Verifier& v) {
        whole(v);
        v.add_daily_total({.account = "b", .day = 3, .type = TransactionType::transfer}, {.credits = 1, .count = 1});
      },
      "daily total of b on 1970-01-04, transfer: stored credits 1");
  one([&](Verifier& v) {
        v.add_daily_total(a, {.credits = 5, .count = 1});
        v.add_daily_total(issuer, {.debits = 5, .count = 1});
        v.add_volume(usd, {.count = 2, .amount = 5});
      },
      "volume of USD in hour 72, deposit: stored count 2");
  one([&](Verifier& v) {
        v.add_daily_total(a, {.credits = 5, .count = 1});
        v.add_daily_total(issuer, {.debits = 5, .count = 1});
      },
      "volume of USD in hour 72, deposit: missing");
  one([&](Verifier& v) {
        whole(v);
        v.add_event_span(4, 9, 5, std::nullopt);
      },
      "events: 5 kept with ids 4 to 9: not gapless");
  one([&](Verifier& v) {
        whole(v);
        v.add_event_span(4, 9, 6, 10);
      },
      "events: the newest id is 9 but the counter says 10");
}

// Check 12: a hold's keys kept apart from its row (SQLite's hold_keys) must say what
// the row says. Counted against the same history without keys, whatever else it finds.
TEST(Verify, ComparesTheStoredHoldKeysWithTheHolds) {
  const Transaction hold{.sequence = 7, .id = "h", .type = TransactionType::hold, .source = "a", .destination = "b",
                         .amount = 3, .currency = "USD", .source_balance_after = 5, .destination_balance_after = 0,
                         .expires_at_ms = 1000, .hold_status = HoldStatus::pending, .risk_decision = "review"};
  const HoldKey key{.sequence = 7, .source = "a", .destination = "b", .expires_at_ms = 1000, .pending = true,
                    .review = true};
  const auto run = [&](bool keys, const std::vector<HoldKey>& stored) {
    Verifier verifier;
    if (keys) verifier.check_hold_keys();
    verifier.add_account(Account{.number = "a", .currency = "USD", .balance = 5, .version = 1, .pending_debits = 3});
    verifier.add_account(Account{.number = "b", .currency = "USD", .version = 1, .pending_credits = 3});
    verifier.add_transaction(hold);
    for (const auto& k : stored) verifier.add_hold_key(k);
    return verifier.finish();
  };
  const int64_t baseline = run(false, {}).problem_count;
  EXPECT_EQ(run(true, {key}).problem_count, baseline);
  const auto one_more = [&](const std::vector<HoldKey>& stored, const std::string& says) {
    const auto report = run(true, stored);
    EXPECT_EQ(report.problem_count, baseline + 1) << says;
    bool found = false;
    for (const auto& problem : report.problems) found = found || problem.find(says) != std::string::npos;
    EXPECT_TRUE(found) << says;
  };
  one_more({}, "hold h (sequence 7) has no key");
  HoldKey ended = key;
  ended.pending = false;
  one_more({ended}, "hold h: its key (a -> b, expires 1000, review) disagrees with its row");
  HoldKey later = key;
  later.expires_at_ms = 2000;
  one_more({later}, "disagrees with its row");
  HoldKey stray = key;
  stray.sequence = 8;
  one_more({key, stray}, "hold key of sequence 8 names no committed hold");
}

TEST(Verify, DetectsTamperingWithTheAuditChain) {
  Ledger ledger;
  ledger.apply({open("a", 10), open("b", 0)});
  ledger.apply_one(move("t1", "a", "b", 3));
  ASSERT_TRUE(ledger.verify().clean());
  ledger.audit()[1].detail += " ";
  auto report = ledger.verify();
  EXPECT_FALSE(report.clean());
  EXPECT_NE(report.problems.at(0).find("audit record 2"), std::string::npos);
}

TEST(Verify, DetectsABalanceThatDisagreesWithItsPostings) {
  Verifier verifier;
  verifier.add_account(Account{.number = "a", .currency = "USD", .balance = 5, .version = 1});
  verifier.add_account(Account{.number = "$issuer:USD", .currency = "USD", .balance = -5,
                               .overdraft_limit = issuer_overdraft_limit, .version = 1});
  verifier.add_transaction(Transaction{.sequence = 1, .id = "d", .source = "$issuer:USD",
                                       .destination = "a", .amount = 4, .currency = "USD",
                                       .source_balance_after = -4,
                                       .destination_balance_after = 4});
  auto report = verifier.finish();
  EXPECT_EQ(report.problem_count, 2);  // a and the issuer both disagree
}

TEST(Verify, DetectsAReferenceOwnedByNoPostingWithIt) {
  auto run = [](std::vector<ReferenceClaim> claims) {
    Verifier verifier;
    verifier.add_account(Account{.number = "a", .currency = "USD", .balance = 4, .version = 1});
    verifier.add_account(Account{.number = "$issuer:USD", .currency = "USD", .balance = -4,
                                 .overdraft_limit = issuer_overdraft_limit, .version = 1});
    for (const auto& claim : claims) verifier.add_reference_claim(claim);
    verifier.add_transaction(Transaction{.sequence = 1, .id = "d", .type = TransactionType::deposit,
                                         .source = "$issuer:USD", .destination = "a", .amount = 4,
                                         .currency = "USD", .source_balance_after = -4,
                                         .destination_balance_after = 4, .reference = "ach-1",
                                         .source_version_after = 1, .destination_version_after = 1});
    return verifier.finish().problem_count;
  };
  EXPECT_EQ(run({{.key = reference_key("USD", "ach-1"), .transaction_id = "d"}}), 0);
  EXPECT_EQ(run({{.key = reference_key("USD", "ach-2"), .transaction_id = "d"}}), 1);  // another reference
  EXPECT_EQ(run({{.key = reference_key("USD", "ach-1"), .transaction_id = "gone"}}), 1);  // no such posting
}

TEST(Verify, DetectsNonZeroSumAndBrokenChain) {
  Verifier verifier;
  verifier.add_account(Account{.number = "a", .currency = "USD", .balance = 5, .version = 1});
  verifier.add_account(Account{.number = "b", .currency = "USD", .balance = 0, .version = 1});
  verifier.add_transaction(Transaction{.sequence = 1, .id = "x", .source = "b",
                                       .destination = "a", .amount = 5, .currency = "USD",
                                       .source_balance_after = 0,
                                       .destination_balance_after = 5});
  auto report = verifier.finish();
  EXPECT_FALSE(report.clean());
  bool saw_sum = false;
  bool saw_chain = false;
  for (const auto& p : report.problems) {
    saw_sum |= p.find("sum to") != std::string::npos;
    saw_chain |= p.find("replay gives") != std::string::npos;
  }
  EXPECT_TRUE(saw_sum);
  EXPECT_TRUE(saw_chain);
}

Transfer linked(Transfer transfer, uint64_t link) {
  transfer.link = link;
  return transfer;
}

TEST(LinkedTransfers, AllCommitTogether) {
  Ledger ledger;
  ledger.apply({open("a", 100), open("b", 0), open("c", 0)});
  auto outcomes = ledger.apply({linked(move("l1", "a", "b", 60), 7), linked(move("l2", "b", "c", 50), 7)});
  EXPECT_EQ(outcomes[0].code, Code::ok);
  EXPECT_EQ(outcomes[1].code, Code::ok);  // b's 60 from l1 is there for l2
  EXPECT_EQ(ledger.account("a").balance, 40);
  EXPECT_EQ(ledger.account("b").balance, 10);
  EXPECT_EQ(ledger.account("c").balance, 50);
}

TEST(LinkedTransfers, OneFailsAndNoneHappensNorIsRecorded) {
  Ledger ledger;
  ledger.apply({open("a", 100), open("b", 0)});
  const auto a_before = ledger.account("a");
  auto outcomes = ledger.apply({move("solo", "a", "b", 1),  // not linked: unaffected
                                linked(move("l1", "a", "b", 60), 9), linked(move("l2", "a", "b", 50), 9),
                                linked(move("l3", "b", "a", 1), 9), move("after", "a", "b", 2)});
  ASSERT_EQ(outcomes.size(), 5u);
  EXPECT_EQ(outcomes[0].code, Code::ok);
  EXPECT_EQ(outcomes[1].code, Code::linked_failed);
  EXPECT_EQ(outcomes[2].code, Code::insufficient_funds);  // 99 - 60 < 50
  EXPECT_EQ(outcomes[3].code, Code::linked_failed);
  EXPECT_EQ(outcomes[4].code, Code::ok);
  for (int i = 1; i <= 3; ++i) EXPECT_FALSE(outcomes[i].transaction) << i;
  EXPECT_EQ(ledger.account("a").balance, 100 - 1 - 2);
  EXPECT_EQ(ledger.account("b").balance, 3);
  EXPECT_EQ(ledger.account("a").version, a_before.version + 2);  // only solo and after
  // Nothing of the group was recorded: the same ids, once funds allow, commit.
  auto again = ledger.apply({linked(move("l1", "a", "b", 60), 11), linked(move("l3", "b", "a", 1), 11)});
  EXPECT_EQ(again[0].code, Code::ok);
  EXPECT_EQ(again[1].code, Code::ok);
  EXPECT_FALSE(again[0].replayed);
}

TEST(LinkedTransfers, AdjacentGroupsStayApart) {
  Ledger ledger;
  ledger.apply({open("a", 10), open("b", 0)});
  auto outcomes = ledger.apply({linked(move("g1", "a", "b", 5), 1), linked(move("g2", "a", "b", 50), 2),
                                linked(move("g3", "a", "b", 1), 3)});
  EXPECT_EQ(outcomes[0].code, Code::ok);
  EXPECT_EQ(outcomes[1].code, Code::insufficient_funds);
  EXPECT_EQ(outcomes[2].code, Code::ok);
  EXPECT_EQ(ledger.account("b").balance, 6);
}

}  // namespace
}  // namespace balanced::core

namespace balanced::core {
namespace {

// Property test: random sequences of account creations, transfers, deposits, withdrawals,
// limit and status changes and replays, applied in random batches, against a model a
// few lines long; after every batch every balance, version and status agrees with the
// model and verify() is clean (conservation, postings, audit chain, versions).
class Model {
 public:
  struct Entry {
    std::string currency;
    int64_t balance = 0;
    int64_t limit = 0;
    AccountStatus status = AccountStatus::active;
    int64_t version = 0;
    int64_t pending_debits = 0;
    int64_t pending_credits = 0;
  };
  // A hold placed (or refused: `placed` false), and a transfer or capture one may refund.
  struct HoldEntry {
    std::string source, destination;
    int64_t amount = 0;
    int64_t expires_at = 0;
    bool placed = false;
    HoldStatus status = HoldStatus::pending;
  };
  struct Refundable {
    std::string source, destination;
    int64_t amount = 0;
    int64_t refunded = 0;
  };
  std::map<std::string, Entry> accounts;
  std::map<std::string, std::pair<std::string, Code>> decided;  // id -> (payload hash, code)
  std::map<std::string, HoldEntry> holds;
  std::map<std::string, Refundable> refundables;
  std::map<std::string, bool> rows;  // every recorded id -> committed

  // A hold placed at `now`.
  Code hold(const Transfer& t, int64_t now) {
    if (auto it = decided.find(t.id); it != decided.end()) {
      return it->second.first == t.request_hash ? it->second.second : Code::idempotency_conflict;
    }
    const Code code = decide(t, t.source);
    decided.emplace(t.id, std::make_pair(t.request_hash, code));
    holds[t.id] = HoldEntry{.source = t.source, .destination = t.destination, .amount = t.amount,
                            .expires_at = now + t.expires_in_s * 1000, .placed = code == Code::ok};
    if (code == Code::ok) {
      hold_amounts(holds[t.id], t.amount);
    }
    return code;
  }

  // A capture (amount), void or expire of hold `hold_id` committed at `now`.
  Code settle(const SettleHold& s, int64_t now) {
    const bool expire = s.type == TransactionType::expire;
    if (auto it = decided.find(s.id); it != decided.end()) {
      if (expire) return Code::ok;
      return it->second.first == s.request_hash ? it->second.second : Code::idempotency_conflict;
    }
    auto it = holds.find(s.hold_id);
    if (it == holds.end()) return Code::hold_not_found;
    HoldEntry& h = it->second;
    Code code = Code::ok;
    if (!h.placed || h.status != HoldStatus::pending) {
      code = Code::hold_not_pending;
    } else if (expire ? now < h.expires_at : now >= h.expires_at) {
      code = Code::hold_not_pending;
    } else if (s.type == TransactionType::capture) {
      const int64_t amount = s.amount.value_or(h.amount);
      const Entry& from = accounts.at(h.source);
      const Entry& to = accounts.at(h.destination);
      if (amount > h.amount) {
        code = Code::exceeds_hold_amount;
      } else if (from.status == AccountStatus::closed || to.status == AccountStatus::closed) {
        code = Code::account_closed;
      } else if (from.status == AccountStatus::frozen) {
        code = Code::account_frozen;
      }
    }
    if (expire && code != Code::ok) return code;  // the sweeper's refusals are not recorded
    decided.emplace(s.id, std::make_pair(s.request_hash, code));
    if (code != Code::ok) return code;
    hold_amounts(h, -h.amount);
    accounts.at(h.source).version -= 1;  // released and moved in one change
    accounts.at(h.destination).version -= 1;
    if (s.type == TransactionType::capture) {
      const int64_t amount = s.amount.value_or(h.amount);
      post_to(h.source, -amount);
      post_to(h.destination, amount);
      refundables[s.id] = Refundable{.source = h.source, .destination = h.destination, .amount = amount};
      h.status = HoldStatus::captured;
    } else {
      accounts.at(h.source).version += 1;
      accounts.at(h.destination).version += 1;
      h.status = expire ? HoldStatus::expired : HoldStatus::voided;
    }
    return code;
  }

  Code refund(const Refund& r) {
    if (auto it = decided.find(r.id); it != decided.end()) {
      return it->second.first == r.request_hash ? it->second.second : Code::idempotency_conflict;
    }
    auto original = refundables.find(r.original_id);
    Code code = Code::ok;
    if (original == refundables.end()) {
      if (!decided.contains(r.original_id)) return Code::not_found;
      code = Code::not_refundable;
    } else {
      Refundable& o = original->second;
      const int64_t remainder = o.amount - o.refunded;
      const int64_t amount = r.amount.value_or(remainder);
      const Entry& from = accounts.at(o.destination);
      const Entry& to = accounts.at(o.source);
      if (amount <= 0 || amount > remainder) {
        code = Code::exceeds_refundable_amount;
      } else if (from.status == AccountStatus::closed || to.status == AccountStatus::closed) {
        code = Code::account_closed;
      } else if (from.status == AccountStatus::frozen) {
        code = Code::account_frozen;
      } else if (amount > from.balance - from.pending_debits + from.limit) {
        code = Code::insufficient_funds;
      } else {
        o.refunded += amount;
        post_to(o.destination, -amount);
        post_to(o.source, amount);
      }
    }
    decided.emplace(r.id, std::make_pair(r.request_hash, code));
    return code;
  }

  void hold_amounts(const HoldEntry& h, int64_t delta) {
    accounts.at(h.source).pending_debits += delta;
    accounts.at(h.destination).pending_credits += delta;
    accounts.at(h.source).version += 1;
    accounts.at(h.destination).version += 1;
  }

  Code posting(const Transfer& t, const std::string& client) {
    if (auto it = decided.find(t.id); it != decided.end()) {
      return it->second.first == t.request_hash ? it->second.second : Code::idempotency_conflict;
    }
    const Code code = decide(t, client);
    decided.emplace(t.id, std::make_pair(t.request_hash, code));
    if (code == Code::ok) {
      post_to(t.source, -t.amount);
      post_to(t.destination, t.amount);
      if (t.type == TransactionType::transfer) {
        refundables[t.id] = Refundable{.source = t.source, .destination = t.destination, .amount = t.amount};
      }
    }
    return code;
  }
  // An account opened: its currency's issuer exists from then on.
  void open_account(const std::string& number, const std::string& currency, int64_t limit, int64_t initial) {
    accounts[number] = Entry{.currency = currency, .limit = limit};
    accounts.emplace(issuer_account_number(currency), Entry{.currency = currency, .limit = issuer_overdraft_limit});
    if (initial > 0) {
      post_to(issuer_account_number(currency), -initial);
      post_to(number, initial);
    }
  }
  void post_to(const std::string& number, int64_t delta) {
    Entry& entry = accounts.at(number);
    entry.balance += delta;
    entry.version += 1;
  }

 private:
  Code decide(const Transfer& t, const std::string& client) {
    if (t.source == t.destination) return Code::same_account;
    auto source = accounts.find(t.source);
    auto destination = accounts.find(t.destination);
    const bool client_found = accounts.contains(client);
    if (source == accounts.end() || destination == accounts.end()) {
      return t.type != TransactionType::transfer && client_found ? Code::currency_mismatch : Code::account_not_found;
    }
    if (source->second.currency != destination->second.currency ||
        (!t.currency.empty() && t.currency != source->second.currency)) {
      return Code::currency_mismatch;
    }
    if (source->second.status == AccountStatus::closed || destination->second.status == AccountStatus::closed) {
      return Code::account_closed;
    }
    if (source->second.status == AccountStatus::frozen) return Code::account_frozen;
    if (t.amount > source->second.balance - source->second.pending_debits + source->second.limit) {
      return Code::insufficient_funds;
    }
    return Code::ok;
  }
};

TEST(LedgerProperties, RandomOperationsAgreeWithAModelAndVerifyAfterEveryBatch) {
  for (uint32_t seed = 1; seed <= 12; ++seed) {
    std::mt19937 random(seed);
    auto pick = [&](int n) { return static_cast<int>(random() % static_cast<uint32_t>(n)); };
    Ledger ledger;
    ledger.set_step_ms(400);  // a hold of 1 s expires three batches on
    Model model;
    const std::vector<std::string> names{"a", "b", "c", "d", "e", "f"};
    std::vector<Transfer> sent;  // for replays
    std::vector<std::string> hold_ids;
    std::vector<std::string> refundable_ids;
    int ids = 0;
    for (int round = 0; round < 80; ++round) {
      const int64_t now = ledger.next_commit_ms();
      std::vector<Operation> batch;
      std::vector<std::function<void(const Outcome&)>> checks;
      const int size = 1 + pick(6);
      for (int k = 0; k < size; ++k) {
        const std::string number = names[static_cast<size_t>(pick(static_cast<int>(names.size())))];
        const std::string other = names[static_cast<size_t>(pick(static_cast<int>(names.size())))];
        const std::string currency = number < "d" ? "USD" : "EUR";
        switch (pick(13)) {
          case 8:
          case 9: {  // a hold, living 1 to 3 s
            Transfer h = move("h" + std::to_string(++ids), number, other, 1 + pick(120));
            h.type = TransactionType::hold;
            h.expires_in_s = 1 + pick(3);
            h.request_hash = hold_request_hash(h);
            const Code expected = model.hold(h, now);
            hold_ids.push_back(h.id);
            batch.push_back(h);
            checks.push_back([expected, id = h.id](const Outcome& o) { EXPECT_EQ(o.code, expected) << id << " " << o.detail; });
            break;
          }
          case 10: {  // a capture of some or all, a void, or the sweeper's expire
            if (hold_ids.empty()) break;
            SettleHold s{.type = static_cast<TransactionType>(static_cast<int>(TransactionType::capture) + pick(3)),
                         .id = "s" + std::to_string(++ids),
                         .hold_id = pick(10) ? hold_ids[static_cast<size_t>(pick(static_cast<int>(hold_ids.size())))]
                                             : "h-unknown"};
            if (s.type == TransactionType::capture && pick(2)) s.amount = 1 + pick(130);
            if (s.type == TransactionType::expire) s.id = expire_transaction_id(s.hold_id);
            s.request_hash = settle_request_hash(s);
            const Code expected = model.settle(s, now);
            if (expected == Code::ok && s.type == TransactionType::capture) refundable_ids.push_back(s.id);
            batch.push_back(s);
            checks.push_back([expected, id = s.id](const Outcome& o) { EXPECT_EQ(o.code, expected) << id << " " << o.detail; });
            break;
          }
          case 11: {  // a refund of part, the rest, or of what is not refundable
            Refund r{.id = "r" + std::to_string(++ids)};
            if (!sent.empty() && pick(2)) {
              r.original_id = sent[static_cast<size_t>(pick(static_cast<int>(sent.size())))].id;
            } else if (!refundable_ids.empty()) {
              r.original_id = refundable_ids[static_cast<size_t>(pick(static_cast<int>(refundable_ids.size())))];
            } else {
              r.original_id = "t-unknown";
            }
            if (pick(2)) r.amount = 1 + pick(60);
            r.request_hash = refund_request_hash(r);
            const Code expected = model.refund(r);
            batch.push_back(r);
            checks.push_back([expected, id = r.id](const Outcome& o) { EXPECT_EQ(o.code, expected) << id << " " << o.detail; });
            break;
          }
          case 12:
            break;
          case 0: {  // open (an existing one is refused)
            CreateAccount create = open(number, pick(3) * 100, currency, pick(2) * 50);
            const bool exists = model.accounts.contains(number);
            if (!exists) model.open_account(number, currency, create.overdraft_limit, create.initial_balance);
            batch.push_back(create);
            checks.push_back([exists](const Outcome& o) { EXPECT_EQ(o.code, exists ? Code::account_exists : Code::ok); });
            break;
          }
          case 1:
          case 2: {  // transfer
            Transfer t = move("t" + std::to_string(++ids), number, other, 1 + pick(120));
            const Code expected = model.posting(t, t.source);
            sent.push_back(t);
            batch.push_back(t);
            checks.push_back([expected, id = t.id](const Outcome& o) { EXPECT_EQ(o.code, expected) << id << " " << o.detail; });
            break;
          }
          case 3: {  // deposit or withdrawal
            const auto type = pick(2) ? TransactionType::deposit : TransactionType::withdrawal;
            Transfer p = posting(type, "p" + std::to_string(++ids), number, 1 + pick(150), pick(5) ? currency : "JPY");
            const Code expected = model.posting(p, number);
            sent.push_back(p);
            batch.push_back(p);
            checks.push_back([expected, id = p.id](const Outcome& o) { EXPECT_EQ(o.code, expected) << id << " " << o.detail; });
            break;
          }
          case 4: {  // replay an earlier one, or the same id with another amount
            if (sent.empty()) break;
            Transfer t = sent[static_cast<size_t>(pick(static_cast<int>(sent.size())))];
            if (pick(3) == 0) {
              t.amount += 1;
              t.request_hash = t.type == TransactionType::transfer
                                   ? transfer_request_hash(t)
                                   : posting_request_hash(t.type, t.type == TransactionType::deposit ? t.destination : t.source, t);
            }
            const Code expected = model.posting(t, t.type == TransactionType::deposit ? t.destination : t.source);
            batch.push_back(t);
            checks.push_back([expected, id = t.id](const Outcome& o) { EXPECT_EQ(o.code, expected) << "replay " << id; });
            break;
          }
          case 5: {  // a limit change
            PatchAccount p = patch(number);
            p.overdraft_limit = pick(3) * 40;
            auto it = model.accounts.find(number);
            Code expected = Code::ok;
            if (it == model.accounts.end()) {
              expected = Code::account_not_found;
            } else if (*p.overdraft_limit != it->second.limit) {
              if (it->second.status == AccountStatus::closed) {
                expected = Code::invalid_state_transition;
              } else {
                it->second.limit = *p.overdraft_limit;
                it->second.version += 1;
              }
            }
            batch.push_back(p);
            checks.push_back([expected](const Outcome& o) { EXPECT_EQ(o.code, expected) << o.detail; });
            break;
          }
          default: {  // a status change
            PatchAccount p = patch(number);
            const AccountStatus to = static_cast<AccountStatus>(pick(3));
            p.status = to;
            auto it = model.accounts.find(number);
            Code expected = Code::ok;
            if (it == model.accounts.end()) {
              expected = Code::account_not_found;
            } else if (to != it->second.status) {
              if (it->second.status == AccountStatus::closed) {
                expected = Code::invalid_state_transition;
              } else if (to == AccountStatus::closed && it->second.balance != 0) {
                expected = Code::account_not_empty;
              } else if (to == AccountStatus::closed && (it->second.pending_debits != 0 || it->second.pending_credits != 0)) {
                expected = Code::account_has_pending_holds;
              } else {
                it->second.status = to;
                it->second.version += 1;
              }
            }
            batch.push_back(p);
            checks.push_back([expected](const Outcome& o) { EXPECT_EQ(o.code, expected) << o.detail; });
            break;
          }
        }
      }
      if (batch.empty()) continue;
      const auto outcomes = ledger.apply(batch);
      ASSERT_EQ(outcomes.size(), checks.size());
      for (size_t i = 0; i < outcomes.size(); ++i) checks[i](outcomes[i]);
      for (const auto& [number, entry] : model.accounts) {
        const Account& account = ledger.account(number);
        ASSERT_EQ(account.balance, entry.balance) << "seed " << seed << " round " << round << " " << number;
        ASSERT_EQ(account.version, entry.version) << "seed " << seed << " round " << round << " " << number;
        ASSERT_EQ(account.pending_debits, entry.pending_debits) << "seed " << seed << " round " << round << " " << number;
        ASSERT_EQ(account.pending_credits, entry.pending_credits) << "seed " << seed << " round " << round << " " << number;
        if (!is_issuer_account(number)) {
          ASSERT_EQ(account.status, entry.status) << number;
          ASSERT_EQ(account.overdraft_limit, entry.limit) << number;
        }
      }
      const auto report = ledger.verify();
      ASSERT_TRUE(report.clean()) << "seed " << seed << " round " << round << ": " << report.problems.front();
    }
  }
}

// Risk rules (DESIGN.md section 11).

std::shared_ptr<const RiskCheck> risk(std::string_view rules_json, bool single = false,
                                      std::optional<RiskDecision> hook = std::nullopt) {
  auto rules = parse_risk_rules(rules_json);
  EXPECT_TRUE(rules.ok()) << (rules.ok() ? "" : rules.error().detail);
  auto check = std::make_shared<RiskCheck>();
  check->rules = std::make_shared<const RiskRules>(rules.ok() ? rules.value() : RiskRules{});
  check->hook = hook;
  check->review_holds = single;
  check->review_hold_expiry_s = 3600;
  return check;
}

Transfer checked(Transfer transfer, std::shared_ptr<const RiskCheck> check) {
  transfer.risk = std::move(check);
  return transfer;
}

TEST(RiskRules, ParseRefusesWhatIsNotAValidRulesFile) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"{}", "a list of rules"},
      {"[1]", "rules[0]: a rule is an object"},
      {R"([{"when":{},"then":"deny"}])", "rules[0]: name"},
      {R"([{"name":"$x","then":"deny"}])", "rules[0]: name"},
      {R"([{"name":"a","then":"allow"}])", "rules[0] (a): then"},
      {R"([{"name":"a","then":"deny","extra":1}])", "unknown member \"extra\""},
      {R"([{"name":"a","when":{"amountGte":0},"then":"deny"}])", "rules[0] (a) when.amountGte"},
      {R"([{"name":"a","when":{"amountGte":1.5},"then":"deny"}])", "when.amountGte"},
      {R"([{"name":"a","when":{"amountGte":"5"},"then":"deny"}])", "when.amountGte"},
      {R"([{"name":"a","when":{"type":["capture"]},"then":"deny"}])", "when.type"},
      {R"([{"name":"a","when":{"type":[]},"then":"deny"}])", "when.type"},
      {R"([{"name":"a","when":{"currency":"usd"},"then":"deny"}])", "when.currency"},
      {R"([{"name":"a","when":{"amountLte":5},"then":"deny"}])", "unknown condition"},
      {R"([{"name":"a","then":"deny"},{"name":"a","then":"review"}])", "used twice"},
      {R"([{"name":"a","then":"deny","name":"b"}])", "repeated"},
  };
  for (const auto& [text, expected] : bad) {
    auto parsed = parse_risk_rules(text);
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(parsed.error().code, Code::invalid_request);
    EXPECT_NE(parsed.error().detail.find(expected), std::string::npos) << text << " -> " << parsed.error().detail;
  }
  std::string many = "[";
  for (size_t i = 0; i <= risk_rules_max; ++i) {
    many += std::string(i ? "," : "") + R"({"name":"r)" + std::to_string(i) + R"(","then":"deny"})";
  }
  EXPECT_FALSE(parse_risk_rules(many + "]").ok());
  auto wrapped = parse_risk_rules(R"({"rules":[{"name":"all","then":"review"}]})");
  ASSERT_TRUE(wrapped.ok());
  EXPECT_EQ(wrapped.value().rules.size(), 1u);
  EXPECT_FALSE(wrapped.value().counts_velocity);
  EXPECT_TRUE(parse_risk_rules("[]").ok());
}

TEST(RiskRules, TheFirstRuleThatMatchesDecidesOnEveryCondition) {
  auto rules = parse_risk_rules(R"([
    {"name":"eur-big","when":{"currency":"EUR","amountGte":500},"then":"deny"},
    {"name":"cash-out","when":{"type":["withdrawal"],"amountGte":100},"then":"review"},
    {"name":"burst","when":{"sourceCountLastMinuteGte":3},"then":"deny"},
    {"name":"daily","when":{"sourceAmountLastDayGte":1000},"then":"review"}])");
  ASSERT_TRUE(rules.ok()) << rules.error().detail;
  EXPECT_TRUE(rules.value().counts_velocity);
  const auto decide = [&](TransactionType type, int64_t amount, std::string_view currency, Velocity with_this) {
    return evaluate(rules.value(), RiskInput{.type = type, .amount = amount, .currency = currency, .with_this = with_this});
  };
  EXPECT_EQ(decide(TransactionType::transfer, 500, "EUR", {1, 500}).rule, "eur-big");
  EXPECT_EQ(decide(TransactionType::transfer, 499, "EUR", {1, 499}).decision, RiskDecision::allow);
  EXPECT_EQ(decide(TransactionType::transfer, 500, "USD", {1, 500}).decision, RiskDecision::allow);
  EXPECT_EQ(decide(TransactionType::withdrawal, 100, "USD", {1, 100}).rule, "cash-out");
  EXPECT_EQ(decide(TransactionType::transfer, 100, "USD", {1, 100}).decision, RiskDecision::allow);
  EXPECT_EQ(decide(TransactionType::transfer, 1, "USD", {3, 3}).rule, "burst");
  EXPECT_EQ(decide(TransactionType::transfer, 1, "USD", {2, 1000}).rule, "daily");
  // A deposit's source is the issuer: velocity conditions never hold for it.
  EXPECT_EQ(evaluate(rules.value(), RiskInput{.type = TransactionType::deposit, .amount = 1, .currency = "USD"}).decision,
            RiskDecision::allow);
  Velocity windows;
  EXPECT_TRUE(count_debit(windows, 1'000'000, 5, 1'000'000 + risk_minute_ms - 1));
  EXPECT_TRUE(count_debit(windows, 1'000'000, 7, 1'000'000 + risk_minute_ms));  // summed, not counted
  EXPECT_FALSE(count_debit(windows, 1'000'000, 9, 1'000'000 + risk_day_ms));
  EXPECT_EQ(windows.count_last_minute, 1);
  EXPECT_EQ(windows.amount_last_day, 12);
  add_debit(windows, kMax);
  EXPECT_EQ(windows.amount_last_day, kMax);  // saturates
}

TEST(RiskRules, ADebitWindowKeepsTheLastMinuteAndDayAsTimeGoesOn) {
  const int64_t t0 = 1'000'000'000;
  DebitWindow window({{t0 - risk_day_ms, 1000}, {t0 - 5, 7}, {t0 - risk_minute_ms, 3}, {t0 - 1, 2}}, t0);
  EXPECT_EQ(window.size(), 4u);  // the one at the day's edge is kept a while, not counted
  Velocity now = window.velocity(t0);
  EXPECT_EQ(now.count_last_minute, 2);  // t0 - 5 and t0 - 1: the minute's edge is out
  EXPECT_EQ(now.amount_last_day, 12);
  window.add(t0 + 10, kMax);
  now = window.velocity(t0 + risk_minute_ms);  // t0 - 5 and t0 - 1 leave the minute
  EXPECT_EQ(now.count_last_minute, 1);
  EXPECT_EQ(now.amount_last_day, kMax);  // saturated, exact underneath
  now = window.velocity(t0 + risk_day_ms);  // all but the last leave the day
  EXPECT_EQ(now.count_last_minute, 0);
  EXPECT_EQ(now.amount_last_day, kMax);
  EXPECT_EQ(window.size(), 3u);  // t0 - day and t0 - minute are past keeping
  now = window.velocity(t0 + 10 + risk_day_ms);
  EXPECT_EQ(now.amount_last_day, 0);
  now = window.velocity(t0 + 10 + risk_day_ms + DebitWindow::slack_ms);
  EXPECT_EQ(now.amount_last_day, 0);
  EXPECT_EQ(window.size(), 0u);  // all past keeping: memory follows the day
}

// Another MySQL replica's debit can carry a time a little before the newest kept (its
// clock), and a replica's committers ask a little out of order: both are answered
// exactly within DebitWindow::slack_ms; an instant before that is refused.
TEST(RiskRules, ADebitWindowPlacesALateDebitAndAnswersAnEarlierInstantWithinItsSlack) {
  const int64_t t0 = 1'000'000'000;
  DebitWindow window({{t0 - 30'000, 1}, {t0 - 2'000, 2}}, t0);
  EXPECT_EQ(window.velocity(t0).count_last_minute, 2);
  window.add(t0 - 10'000, 4);                                // between the two, inside the minute
  window.add(t0 - risk_minute_ms - 5, 8);                    // before the minute, inside the day
  window.add(t0 - risk_day_ms, 16);                          // out of the day, kept a while
  window.add(t0 - risk_day_ms - DebitWindow::slack_ms, 32);  // past keeping: dropped
  EXPECT_EQ(window.size(), 5u);
  Velocity now = window.velocity(t0);
  EXPECT_EQ(now.count_last_minute, 3);
  EXPECT_EQ(now.amount_last_day, 15);
  now = window.velocity(t0 + 35'000);  // t0 - 30 s leaves the minute; t0 - 10 s is still in
  EXPECT_EQ(now.count_last_minute, 2);
  now = window.velocity(t0 + 20'000);  // earlier, within the slack: t0 - 30 s is in again
  EXPECT_EQ(now.count_last_minute, 3);
  now = window.velocity(t0 - 1);  // before the day's edge moved past t0 - day: counted again
  EXPECT_EQ(now.amount_last_day, 31);
  EXPECT_TRUE(window.answers(t0 + 35'000 - DebitWindow::slack_ms));
  EXPECT_FALSE(window.answers(t0 + 35'000 - DebitWindow::slack_ms - 1));
  now = window.velocity(t0 + risk_day_ms - risk_minute_ms - 5);  // the one before the minute leaves the day
  EXPECT_EQ(now.amount_last_day, 7);
}

TEST(RiskRules, ADenyIsRecordedWithItsRuleAndSticky) {
  Ledger ledger;
  ledger.apply({open("rk-a", 1000), open("rk-b", 0)});
  const auto rules = risk(R"([{"name":"big","when":{"amountGte":500},"then":"deny"}])");
  auto denied = ledger.apply_one(checked(move("rk-1", "rk-a", "rk-b", 600), rules));
  EXPECT_EQ(denied.code, Code::risk_denied);
  EXPECT_NE(denied.detail.find("risk rule big denies"), std::string::npos) << denied.detail;
  const Transaction& row = ledger.transaction("rk-1");
  EXPECT_EQ(row.status, TransactionStatus::rejected);
  EXPECT_EQ(row.risk_decision, "deny");
  EXPECT_EQ(row.risk_rule, "big");
  EXPECT_EQ(ledger.account("rk-a").balance, 1000);
  // Sticky: the same request is the same answer, whatever the rules are now.
  auto again = ledger.apply_one(move("rk-1", "rk-a", "rk-b", 600));
  EXPECT_EQ(again.code, Code::risk_denied);
  EXPECT_TRUE(again.replayed);
  EXPECT_NE(again.detail.find("(big)"), std::string::npos) << again.detail;
  EXPECT_EQ(ledger.apply_one(checked(move("rk-2", "rk-a", "rk-b", 499), rules)).code, Code::ok);
  EXPECT_TRUE(ledger.transaction("rk-2").risk_decision.empty());  // allowed by no rule: nothing recorded
  // A refusal for another reason is decided first: no risk decision on it.
  auto short_of_funds = ledger.apply_one(checked(move("rk-3", "rk-a", "rk-b", 5000), rules));
  EXPECT_EQ(short_of_funds.code, Code::insufficient_funds);
  EXPECT_TRUE(ledger.transaction("rk-3").risk_decision.empty());
  EXPECT_TRUE(ledger.verify().clean());
}

TEST(RiskRules, AReviewHoldsASingleTransferAndDeniesElsewhere) {
  Ledger ledger;
  ledger.apply({open("rv-a", 1000), open("rv-b", 0)});
  const char* json = R"([{"name":"look","when":{"amountGte":100},"then":"review"}])";
  auto held = ledger.apply_one(checked(move("rv-1", "rv-a", "rv-b", 300), risk(json, true)));
  ASSERT_EQ(held.code, Code::ok);
  ASSERT_TRUE(held.hold);
  EXPECT_EQ(held.transaction->type, TransactionType::hold);
  EXPECT_EQ(held.hold->hold_status, HoldStatus::pending);
  EXPECT_EQ(held.hold->risk_decision, "review");
  EXPECT_EQ(held.hold->risk_rule, "look");
  EXPECT_EQ(held.hold->expires_at_ms - held.hold->created_at_ms, 3600 * 1000);
  EXPECT_EQ(ledger.account("rv-a").balance, 1000);
  EXPECT_EQ(ledger.account("rv-a").pending_debits, 300);
  // The replay of the transfer answers the hold.
  auto replayed = ledger.apply_one(checked(move("rv-1", "rv-a", "rv-b", 300), risk(json, true)));
  EXPECT_EQ(replayed.code, Code::ok);
  EXPECT_TRUE(replayed.replayed);
  ASSERT_TRUE(replayed.hold);
  EXPECT_EQ(replayed.hold->id, "rv-1");
  // The destination cannot capture it; it may void it. A reviewer captures.
  SettleHold capture{.type = TransactionType::capture, .id = "rv-c", .hold_id = "rv-1"};
  capture.acting_for = std::vector<std::string>{"rv-b"};
  capture.request_hash = settle_request_hash(capture);
  EXPECT_EQ(ledger.apply_one(capture).code, Code::forbidden);
  capture.acting_for = std::vector<std::string>{};
  capture.reviewer = true;
  EXPECT_EQ(ledger.apply_one(capture).code, Code::ok);
  EXPECT_EQ(ledger.account("rv-b").balance, 300);
  // A batch item, a withdrawal: review denies, naming why.
  auto item = ledger.apply_one(checked(move("rv-2", "rv-a", "rv-b", 100), risk(json)));
  EXPECT_EQ(item.code, Code::risk_denied);
  EXPECT_NE(item.detail.find("here it denies"), std::string::npos) << item.detail;
  EXPECT_EQ(ledger.transaction("rv-2").risk_decision, "deny");
  auto out = ledger.apply_one(checked(posting(TransactionType::withdrawal, "rv-3", "rv-a", 100), risk(json, true)));
  EXPECT_EQ(out.code, Code::risk_denied);
  EXPECT_TRUE(ledger.verify().clean());
}

TEST(RiskRules, TheHooksDecisionWinsWhenMoreSevereAndIsRecorded) {
  Ledger ledger;
  ledger.apply({open("hk-a", 1000), open("hk-b", 0)});
  const char* json = R"([{"name":"look","when":{"amountGte":100},"then":"review"}])";
  auto allowed = ledger.apply_one(checked(move("hk-1", "hk-a", "hk-b", 5), risk(json, true, RiskDecision::allow)));
  EXPECT_EQ(allowed.code, Code::ok);
  EXPECT_EQ(ledger.transaction("hk-1").risk_decision, "allow");
  EXPECT_EQ(ledger.transaction("hk-1").risk_rule, risk_hook_rule);
  auto denied = ledger.apply_one(checked(move("hk-2", "hk-a", "hk-b", 500), risk(json, true, RiskDecision::deny)));
  EXPECT_EQ(denied.code, Code::risk_denied);
  EXPECT_EQ(ledger.transaction("hk-2").risk_rule, risk_hook_rule);
  auto reviewed = ledger.apply_one(checked(move("hk-3", "hk-a", "hk-b", 500), risk(json, true, RiskDecision::allow)));
  EXPECT_EQ(reviewed.code, Code::ok);
  EXPECT_EQ(ledger.transaction("hk-3").risk_rule, "look");  // the rule's review is the more severe
  EXPECT_EQ(ledger.transaction("hk-3").type, TransactionType::hold);
}

TEST(RiskRules, VelocityCountsTheSourcesCommittedDebitsThisBatchIncluded) {
  Ledger ledger;
  ledger.set_step_ms(1000);
  ledger.apply({open("vl-a", 100000), open("vl-b", 0)});
  const auto rules = risk(R"([{"name":"burst","when":{"sourceCountLastMinuteGte":3},"then":"deny"},
                              {"name":"daily","when":{"sourceAmountLastDayGte":1000},"then":"deny"}])");
  EXPECT_EQ(ledger.apply_one(checked(move("vl-1", "vl-a", "vl-b", 10), rules)).code, Code::ok);
  // In one batch: the second is the third debit of the minute.
  auto batch = ledger.apply({checked(move("vl-2", "vl-a", "vl-b", 10), rules), checked(move("vl-3", "vl-a", "vl-b", 10), rules)});
  EXPECT_EQ(batch[0].code, Code::ok);
  EXPECT_EQ(batch[1].code, Code::risk_denied);
  EXPECT_EQ(ledger.transaction("vl-3").risk_rule, "burst");
  // A minute on, a linked group that fails counts nothing of it for the rest of its batch:
  // counted, vl-7 would be the third debit of the minute and the day's 1009th unit.
  ledger.set_step_ms(risk_minute_ms);
  auto group = ledger.apply({linked(checked(move("vl-4", "vl-a", "vl-b", 10), rules), 7),
                             linked(move("vl-5", "vl-b", "vl-a", 1'000'000), 7),
                             checked(move("vl-6", "vl-a", "vl-b", 900), rules),
                             checked(move("vl-7", "vl-a", "vl-b", 79), rules)});
  EXPECT_EQ(group[0].code, Code::linked_failed);
  EXPECT_EQ(group[2].code, Code::ok);
  EXPECT_EQ(group[3].code, Code::ok) << group[3].detail;
  // 10 + 10 + 900 + 79 + 1 reaches the day's 1000 (the denied vl-3 and the undone vl-4 are no debits).
  EXPECT_EQ(ledger.apply_one(checked(move("vl-8", "vl-a", "vl-b", 1), rules)).code, Code::risk_denied);
  ledger.set_step_ms(risk_day_ms);
  EXPECT_EQ(ledger.apply_one(checked(move("vl-9", "vl-a", "vl-b", 999), rules)).code, Code::ok);
  // A refund of a transfer of the same batch counts its source's (the payee's) debits.
  auto refund = [&](std::string id, std::string original, int64_t amount) {
    Refund r{.id = std::move(id), .original_id = std::move(original), .amount = amount};
    r.request_hash = refund_request_hash(r);
    r.risk = rules;
    return r;
  };
  auto paid_back = ledger.apply({move("vl-p", "vl-a", "vl-b", 5000), refund("vl-r1", "vl-p", 600),
                                 refund("vl-r2", "vl-p", 400)});
  EXPECT_EQ(paid_back[1].code, Code::ok);
  EXPECT_EQ(paid_back[2].code, Code::risk_denied);  // vl-b's 600 + 400 today
  EXPECT_TRUE(ledger.verify().clean());
}

}  // namespace
}  // namespace balanced::core
