// Full reconciliation of a ledger, fed row by row so that it works over any store and
// any size: accounts, then committed transactions in sequence order, then audit records
// in log order. Checks:
//   1. per currency, the sum of all balances is 0;
//   2. every balance equals the sum of its postings, and its version their count;
//   3. no balance is below -overdraft_limit;
//   4. every posting's balance-after equals the running balance (the chain replays);
//   5. every audit record's hash is SHA-256(prev_hash || record), prev_hash the hash
//      before it;
//   6. every account's pending debits and credits are the sums of its pending holds, and
//      per currency pending debits equal pending credits;
//   7. no hold ended twice, each ended one says how, and no ended hold shows pending;
//   8. no transaction refunded beyond its amount, and its refunded amount is its refunds'
//      sum;
//   9. every reference taken under --unique-references is its owner's: a committed
//      deposit or withdrawal with that currency and reference;
//  10. when the store keeps reports (check_reports()): every account's daily totals and
//      every currency's hourly volumes equal what its committed transactions sum to,
//      none missing and none extra;
//  11. the change feed's kept event ids are gapless, and end at the counter;
//  12. when the store keeps the holds' keys apart from their rows (check_hold_keys():
//      SQLite's hold_keys), one key per committed hold, with its parties, expiry, and
//      whether it is pending and whether a review made it as its row says; none other;
//  13. every event a store renders from its transaction's row (SQLite's, schema 14) has
//      its committed row, and what it keeps of the rest reads.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/hold_key.h"
#include "core/ledger.h"
#include "core/reports.h"
#include "core/types.h"

namespace balanced::core {

struct VerifyReport {
  int64_t accounts = 0;
  int64_t transactions = 0;
  int64_t audit_records = 0;
  int64_t problem_count = 0;
  std::vector<std::string> problems;  // the first problems_listed_max of them
  bool clean() const { return problem_count == 0; }
};

class Verifier {
 public:
  static constexpr size_t problems_listed_max = 100;

  void add_account(const Account& account);
  // REQUIRES: before the transactions. The store keeps daily totals and volumes, which
  // it visits after the transactions (check 10).
  void check_reports() { check_reports_ = true; }
  // REQUIRES: before the transactions.
  void add_reference_claim(const ReferenceClaim& claim);
  // REQUIRES: committed transactions only, in increasing sequence order.
  void add_transaction(const Transaction& transaction);
  // REQUIRES: check_reports(), after the transactions. One stored row of each key.
  void add_daily_total(const DailyKey& key, const DailyTotal& total);
  // REQUIRES: check_reports(), after the transactions. The rows of a key add up (MySQL
  // spreads an hour over slots).
  void add_volume(const VolumeKey& key, const Volume& volume);
  // The events kept: `count` rows with ids from `oldest` to `newest` (0, 0, 0: none), and
  // the counter the next id follows (nullopt: the store keeps none apart from the rows).
  void add_event_span(int64_t oldest, int64_t newest, int64_t count, std::optional<int64_t> counter);
  // Check 13: an event that cannot be rendered, and why.
  void add_unreadable_event(int64_t id, const std::string& detail);
  // The store keeps hold keys (check 12). REQUIRES: before add_hold_key().
  void check_hold_keys() { check_hold_keys_ = true; }
  // REQUIRES: check_hold_keys(), after the transactions.
  void add_hold_key(const HoldKey& key);
  // REQUIRES: in increasing log_id order.
  void add_audit(const AuditRecord& record);
  // Some audit records of the snapshot are not chained yet (MySQL's sealing job is
  // behind): an account's changes are then checked as at most its version, not equal.
  void set_audit_incomplete() { audit_complete_ = false; }
  VerifyReport finish();

 private:
  struct Replay {
    Account account;
    int64_t running = 0;
    int64_t postings = 0;
    int64_t updates = 0;             // account_update audit records (limit, metadata, status)
    int64_t limit_max = 0;           // the largest overdraft limit it has had
    int64_t last_version_after = 0;  // on its latest transaction that kept one
    int64_t pending_debits = 0;      // of its holds not yet ended
    int64_t pending_credits = 0;
    bool overflowed = false;
  };
  struct HoldReplay {
    Transaction hold;
    std::string ended_by;  // the capture, void or expire seen; empty while pending
  };
  struct RefundReplay {
    int64_t amount = 0;    // the original's
    int64_t settled = 0;   // its refunded amount as stored
    int64_t refunded = 0;  // its refunds' sum, replayed
  };
  void hold_transaction(const Transaction& t);
  void finish_reports();
  void finish_hold_keys();
  void problem(std::string text);
  void post(const Transaction& t, const std::string& number, int64_t delta,
            int64_t balance_after, int64_t version_after);

  std::unordered_map<std::string, Replay> accounts_;
  std::unordered_map<std::string, HoldReplay> holds_;
  // Only the transactions stored as refunded (settled_amount > 0): few.
  std::unordered_map<std::string, RefundReplay> refunded_;
  // Reference claims by their owner's id -> the key, until the owner is seen.
  std::unordered_map<std::string, std::string> claims_;
  // Check 10: what the transactions sum to; a stored daily total found is taken out.
  DailyTotals expected_daily_;
  Volumes expected_volumes_;
  Volumes stored_volumes_;
  bool check_reports_ = false;
  bool check_hold_keys_ = false;
  std::unordered_map<int64_t, HoldKey> hold_keys_;  // by sequence
  std::string audit_head_;
  int64_t last_sequence_ = 0;
  int64_t last_log_id_ = 0;
  bool audit_complete_ = true;
  VerifyReport report_;
};

}  // namespace balanced::core
