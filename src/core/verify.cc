#include "core/verify.h"

#include <algorithm>
#include <boost/json.hpp>

#include "core/audit.h"
#include "core/money.h"
#include "core/reports.h"

namespace balanced::core {

void Verifier::problem(std::string text) {
  ++report_.problem_count;
  if (report_.problems.size() < problems_listed_max) report_.problems.push_back(std::move(text));
}

void Verifier::add_account(const Account& account) {
  ++report_.accounts;
  if (!accounts_.emplace(account.number, Replay{.account = account, .limit_max = account.overdraft_limit}).second) {
    problem("account " + account.number + " appears twice");
  }
}

void Verifier::post(const Transaction& t, const std::string& number, int64_t delta,
                    int64_t balance_after, int64_t version_after) {
  auto it = accounts_.find(number);
  if (it == accounts_.end()) {
    problem("transaction " + t.id + " posts to unknown account " + number);
    return;
  }
  Replay& replay = it->second;
  auto running = checked_add(replay.running, delta);
  if (!running) {
    replay.overflowed = true;
    problem("account " + number + " overflows at transaction " + t.id);
    return;
  }
  replay.running = *running;
  ++replay.postings;
  // An account's version counts its postings and its other changes (account_update
  // records), so along its transactions the version after grows, and never falls below
  // the postings so far (0: a row from before versions were kept).
  if (version_after != 0) {
    if (version_after <= replay.last_version_after || version_after < replay.postings) {
      problem("account " + number + ": transaction " + t.id + " says version after " +
              std::to_string(version_after) + ", after " + std::to_string(replay.last_version_after) +
              " and " + std::to_string(replay.postings) + " postings");
    }
    replay.last_version_after = version_after;
  }
  if (replay.running != balance_after) {
    problem("account " + number + ": transaction " + t.id + " (sequence " +
            std::to_string(t.sequence) + ") says balance after " + std::to_string(balance_after) +
            ", replay gives " + std::to_string(replay.running));
  }
  if (t.currency != replay.account.currency) {
    problem("transaction " + t.id + " in " + t.currency + " posts to " + number + " in " +
            replay.account.currency);
  }
}

void Verifier::add_reference_claim(const ReferenceClaim& claim) {
  if (!claims_.emplace(claim.transaction_id, claim.key).second) {
    problem("transaction " + claim.transaction_id + " owns two references");
  }
}

void Verifier::add_transaction(const Transaction& t) {
  ++report_.transactions;
  if (check_reports_) {
    add_daily_totals(t, expected_daily_);
    add_volumes(t, expected_volumes_);
  }
  if (!claims_.empty()) {
    if (auto claim = claims_.find(t.id); claim != claims_.end()) {
      const bool posting = t.type == TransactionType::deposit || t.type == TransactionType::withdrawal;
      if (!posting || reference_key(t.currency, t.reference) != claim->second) {
        problem("reference " + claim->second + " is owned by " + t.id + ", which is no posting with it");
      }
      claims_.erase(claim);
    }
  }
  if (t.sequence <= last_sequence_) {
    problem("transaction " + t.id + " out of sequence order");
  }
  last_sequence_ = t.sequence;
  if (t.amount <= 0) problem("transaction " + t.id + " has amount " + std::to_string(t.amount));
  // A hold, void or expire moves pending amounts only: its balances after stay put.
  const int64_t delta = moves_balance(t.type) ? t.amount : 0;
  post(t, t.source, -delta, t.source_balance_after, t.source_version_after);
  post(t, t.destination, delta, t.destination_balance_after, t.destination_version_after);
  hold_transaction(t);
  if ((t.type == TransactionType::transfer || t.type == TransactionType::capture) && t.settled_amount != 0) {
    refunded_.emplace(t.id, RefundReplay{.amount = t.amount, .settled = t.settled_amount});
  }
  if (t.type == TransactionType::refund) {
    auto original = refunded_.find(t.refund_of);
    if (original == refunded_.end()) {
      problem("refund " + t.id + " gives back " + t.refund_of + ", which is not stored as refunded");
    } else if ((original->second.refunded += t.amount) > original->second.amount) {
      problem("transaction " + t.refund_of + " is refunded beyond its amount by " + t.id);
    }
  }
}

void Verifier::hold_transaction(const Transaction& t) {
  auto pending = [&](const std::string& number, int64_t Replay::*field, int64_t delta) {
    if (auto it = accounts_.find(number); it != accounts_.end()) it->second.*field += delta;
  };
  if (t.type == TransactionType::hold) {
    if (t.hold_status == HoldStatus::none) problem("hold " + t.id + " has no hold status");
    pending(t.source, &Replay::pending_debits, t.amount);
    pending(t.destination, &Replay::pending_credits, t.amount);
    holds_.emplace(t.id, HoldReplay{.hold = t});
    return;
  }
  if (t.type != TransactionType::capture && t.type != TransactionType::void_ && t.type != TransactionType::expire) {
    return;
  }
  auto it = holds_.find(t.hold_id);
  if (it == holds_.end()) {
    problem(std::string(type_name(t.type)) + " " + t.id + " ends hold " + t.hold_id + ", never placed");
    return;
  }
  HoldReplay& replay = it->second;
  if (!replay.ended_by.empty()) {
    problem("hold " + t.hold_id + " ended twice: by " + replay.ended_by + " and by " + t.id);
    return;
  }
  replay.ended_by = t.id;
  pending(replay.hold.source, &Replay::pending_debits, -replay.hold.amount);
  pending(replay.hold.destination, &Replay::pending_credits, -replay.hold.amount);
  const HoldStatus ended = t.type == TransactionType::capture ? HoldStatus::captured
                           : t.type == TransactionType::void_ ? HoldStatus::voided
                                                              : HoldStatus::expired;
  if (replay.hold.hold_status != ended || replay.hold.settled_by != t.id) {
    problem("hold " + t.hold_id + " says " + std::string(hold_status_name(replay.hold.hold_status)) + " by " +
            replay.hold.settled_by + ", but " + t.id + " is a " + std::string(type_name(t.type)));
  }
  if (t.type == TransactionType::capture && (t.amount > replay.hold.amount || replay.hold.settled_amount != t.amount)) {
    problem("capture " + t.id + " of " + std::to_string(t.amount) + " does not match hold " + t.hold_id);
  }
}

void Verifier::add_hold_key(const HoldKey& key) {
  if (!hold_keys_.emplace(key.sequence, key).second) {
    problem("hold key of sequence " + std::to_string(key.sequence) + " appears twice");
  }
}

void Verifier::finish_hold_keys() {
  if (!check_hold_keys_) return;
  for (const auto& [id, replay] : holds_) {
    const Transaction& hold = replay.hold;
    auto key = hold_keys_.find(hold.sequence);
    if (key == hold_keys_.end()) {
      problem("hold " + id + " (sequence " + std::to_string(hold.sequence) + ") has no key");
      continue;
    }
    const HoldKey& k = key->second;
    if (k != hold_key_of(hold)) {
      problem("hold " + id + ": its key (" + k.source + " -> " + k.destination + ", expires " +
              std::to_string(k.expires_at_ms) + (k.pending ? ", pending" : "") + (k.review ? ", review" : "") +
              ") disagrees with its row");
    }
    hold_keys_.erase(key);
  }
  for (const auto& [sequence, key] : hold_keys_) {
    problem("hold key of sequence " + std::to_string(sequence) + " names no committed hold");
  }
}

void Verifier::add_audit(const AuditRecord& record) {
  ++report_.audit_records;
  if (audit_head_.empty()) audit_head_ = genesis_hash();
  if (record.log_id <= last_log_id_) {
    problem("audit record " + std::to_string(record.log_id) + " out of order");
  }
  last_log_id_ = record.log_id;
  if (record.prev_hash != audit_head_) {
    problem("audit record " + std::to_string(record.log_id) +
            ": prev_hash does not match the hash before it");
  }
  if (audit_hash(record) != record.hash) {
    problem("audit record " + std::to_string(record.log_id) + ": hash does not match its content");
  }
  audit_head_ = record.hash;
  if (record.operation_type == "account_update") {
    boost::system::error_code ec;
    const boost::json::value detail = boost::json::parse(record.detail, ec);
    const boost::json::value* number = !ec && detail.is_object() ? detail.as_object().if_contains("accountNumber") : nullptr;
    auto it = number != nullptr && number->is_string() ? accounts_.find(std::string(number->as_string())) : accounts_.end();
    if (it == accounts_.end()) {
      problem("audit record " + std::to_string(record.log_id) + ": an account_update of no known account");
    } else {
      ++it->second.updates;
      // A limit lowered below the debt keeps the balance: the floor is the largest limit
      // the account has had (each debit was checked against the one then in force).
      const boost::json::value* changes = detail.as_object().if_contains("changes");
      const boost::json::value* limit = changes != nullptr && changes->is_object()
                                            ? changes->as_object().if_contains("overdraftLimit")
                                            : nullptr;
      const boost::json::value* from =
          limit != nullptr && limit->is_object() ? limit->as_object().if_contains("from") : nullptr;
      if (from != nullptr && from->is_int64()) {
        it->second.limit_max = std::max(it->second.limit_max, from->as_int64());
      }
    }
  }
}

namespace {

std::string describe(const DailyTotal& t) {
  return "credits " + std::to_string(t.credits) + ", debits " + std::to_string(t.debits) + ", count " +
         std::to_string(t.count);
}
std::string describe(const Volume& v) {
  return "count " + std::to_string(v.count) + ", amount " + std::to_string(v.amount);
}
std::string describe(const DailyKey& k) {
  return "daily total of " + k.account + " on " + format_utc_day(k.day) + ", " + std::string(type_name(k.type));
}
std::string describe(const VolumeKey& k) {
  return "volume of " + k.currency + " in hour " + std::to_string(k.hour) + ", " + std::string(type_name(k.type));
}
bool operator==(const DailyTotal& a, const DailyTotal& b) {
  return a.credits == b.credits && a.debits == b.debits && a.count == b.count;
}
bool operator==(const Volume& a, const Volume& b) { return a.count == b.count && a.amount == b.amount; }

}  // namespace

void Verifier::add_daily_total(const DailyKey& key, const DailyTotal& total) {
  auto it = expected_daily_.find(key);
  if (it == expected_daily_.end()) {
    problem(describe(key) + ": stored " + describe(total) + ", but no committed transaction (or stored twice)");
    return;
  }
  if (!(it->second == total)) {
    problem(describe(key) + ": stored " + describe(total) + ", the transactions sum to " + describe(it->second));
  }
  expected_daily_.erase(it);
}

void Verifier::add_volume(const VolumeKey& key, const Volume& volume) { core::add_volume(stored_volumes_[key], volume); }

void Verifier::add_event_span(int64_t oldest, int64_t newest, int64_t count, std::optional<int64_t> counter) {
  if (count == 0) return;
  if (oldest < 1 || newest - oldest + 1 != count) {
    problem("events: " + std::to_string(count) + " kept with ids " + std::to_string(oldest) + " to " +
            std::to_string(newest) + ": not gapless");
  }
  if (counter && *counter != newest) {
    problem("events: the newest id is " + std::to_string(newest) + " but the counter says " +
            std::to_string(*counter));
  }
}

void Verifier::add_unreadable_event(int64_t id, const std::string& detail) {
  problem("event " + std::to_string(id) + ": " + detail);
}

void Verifier::finish_reports() {
  if (!check_reports_) return;
  for (const auto& [key, total] : expected_daily_) {
    problem(describe(key) + ": missing, the transactions sum to " + describe(total));
  }
  // Both sorted by key: one merge.
  auto want = expected_volumes_.begin();
  auto have = stored_volumes_.begin();
  while (want != expected_volumes_.end() || have != stored_volumes_.end()) {
    if (have == stored_volumes_.end() || (want != expected_volumes_.end() && want->first < have->first)) {
      problem(describe(want->first) + ": missing, the transactions sum to " + describe(want->second));
      ++want;
    } else if (want == expected_volumes_.end() || have->first < want->first) {
      problem(describe(have->first) + ": stored " + describe(have->second) + ", but no committed transaction");
      ++have;
    } else {
      if (!(want->second == have->second)) {
        problem(describe(want->first) + ": stored " + describe(have->second) + ", the transactions sum to " +
                describe(want->second));
      }
      ++want;
      ++have;
    }
  }
}

VerifyReport Verifier::finish() {
  finish_reports();
  finish_hold_keys();
  // 128-bit sums: a currency's balances may add up through int64 overflow to 0.
  std::map<std::string, __int128> sums;
  std::map<std::string, __int128> pending_sums;
  for (const auto& [number, replay] : accounts_) {
    const Account& a = replay.account;
    if (!replay.overflowed && replay.running != a.balance) {
      problem("account " + number + ": balance " + std::to_string(a.balance) +
              " but its postings sum to " + std::to_string(replay.running));
    }
    // Every change audited: the version is the postings plus the recorded updates.
    const int64_t counted = replay.postings + replay.updates;
    if ((audit_complete_ ? counted != a.version : counted > a.version) || replay.last_version_after > a.version) {
      problem("account " + number + ": version " + std::to_string(a.version) + " but " +
              std::to_string(replay.postings) + " postings and " + std::to_string(replay.updates) +
              " audited changes");
    }
    // Issuers have no floor: their balance is minus the money they issued.
    if (!is_issuer_account(number) && (a.overdraft_limit < 0 || a.balance < -replay.limit_max)) {
      problem("account " + number + ": balance " + std::to_string(a.balance) +
              " is below every limit it had, the largest -" + std::to_string(replay.limit_max));
    }
    sums[a.currency] += a.balance;
    if (replay.pending_debits != a.pending_debits || replay.pending_credits != a.pending_credits) {
      problem("account " + number + ": pending " + std::to_string(a.pending_debits) + " out, " +
              std::to_string(a.pending_credits) + " in, but its pending holds sum to " +
              std::to_string(replay.pending_debits) + " and " + std::to_string(replay.pending_credits));
    }
    pending_sums[a.currency] += static_cast<__int128>(a.pending_debits) - a.pending_credits;
  }
  for (const auto& [currency, sum] : pending_sums) {
    if (sum != 0) problem("currency " + currency + ": pending debits and pending credits differ");
  }
  for (const auto& [id, replay] : holds_) {
    if (replay.ended_by.empty() && replay.hold.hold_status != HoldStatus::pending) {
      problem("hold " + id + " says " + std::string(hold_status_name(replay.hold.hold_status)) +
              " but nothing ended it");
    }
  }
  for (const auto& [id, key] : claims_) {
    problem("reference " + key + " is owned by " + id + ", which is no committed transaction");
  }
  for (const auto& [id, replay] : refunded_) {
    if (replay.refunded != replay.settled) {
      problem("transaction " + id + " says " + std::to_string(replay.settled) + " refunded, its refunds sum to " +
              std::to_string(replay.refunded));
    }
  }
  for (const auto& [currency, sum] : sums) {
    if (sum != 0) {
      problem("currency " + currency + ": balances sum to " +
              std::to_string(static_cast<int64_t>(sum)) + " (mod 2^64) instead of 0");
    }
  }
  return report_;
}

}  // namespace balanced::core
