// Risk rules (DESIGN.md section 11): an ordered list of conditions on the debit being
// posted, the first that matches deciding `deny` or `review`. Evaluated by apply_batch()
// inside the commit, with the source account's recent debits the store counted in the
// same database transaction (Velocity), so every replica decides the same.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/codes.h"
#include "core/types.h"

namespace balanced::core {

// Ordered by severity: the more severe of a rule's and the hook's decision wins.
enum class RiskDecision : uint8_t { allow, review, deny };
std::string_view risk_decision_name(RiskDecision decision);
std::optional<RiskDecision> risk_decision_from_name(std::string_view name);

// Bounds of a rules file.
inline constexpr size_t risk_rules_max = 100;
inline constexpr size_t risk_rule_name_bytes_max = 64;
inline constexpr size_t risk_rules_file_bytes_max = 256 * 1024;
// The sliding windows of the velocity conditions, by commit time.
inline constexpr int64_t risk_minute_ms = 60'000;
inline constexpr int64_t risk_day_ms = 86'400'000;
// The name a decision of the risk hook is recorded under (no rule may take it).
inline constexpr std::string_view risk_hook_rule = "$hook";

struct RiskRule {
  std::string name;
  std::optional<int64_t> amount_gte;
  std::vector<TransactionType> types;  // empty: any the rules see
  std::string currency;                // empty: any
  std::optional<int64_t> source_count_last_minute_gte;
  std::optional<int64_t> source_amount_last_day_gte;
  RiskDecision then = RiskDecision::deny;
};

struct RiskRules {
  std::vector<RiskRule> rules;
  // Whether any rule has a velocity condition: the store counts the sources' recent
  // debits only then.
  bool counts_velocity = false;
};

// The types of transaction the rules see: a debit a client asks for. A capture, void or
// expire settles a hold the rules saw when it was placed.
bool risk_checked(TransactionType type);
// The committed debits the velocity windows count: a risk-checked type whose source is
// a client's account (a deposit's is the issuer).
bool counts_as_debit(TransactionType type);

// Parses a rules file: `[{name, when: {...}, then}]` or `{"rules": [...]}`.
// invalid_request, the detail naming the rule and field, when it is not a valid one.
Result<RiskRules> parse_risk_rules(std::string_view text);

// A source account's committed debits in the windows ending at the commit, before the
// debit being decided.
struct Velocity {
  int64_t count_last_minute = 0;
  int64_t amount_last_day = 0;  // saturating at the int64 limit
};
void add_debit(Velocity& velocity, int64_t amount);
// Counts a committed debit made at `created_at_ms` into the windows ending at `now_ms`:
// summed when after now_ms - risk_day_ms, counted when after now_ms - risk_minute_ms.
// Returns false when it is before the day's window (and so, in commit order, is every
// earlier one).
bool count_debit(Velocity& velocity, int64_t created_at_ms, int64_t amount, int64_t now_ms);

// One source account's committed debits in the day's window, kept up to date as batches
// commit (the SQLite store's committer sees every one; a MySQL replica reads what the
// others added since it last looked), so that a batch's velocity costs the debits that
// came and went since the last, not a read of the day's.
class DebitWindow {
 public:
  // How far before the latest instant asked for a window still answers exactly: the
  // debits that left the day within it are kept a while (a replica's committers ask a
  // little out of order: each batch's instant is taken before it waits for its locks).
  static constexpr int64_t slack_ms = 60'000;
  // A window is built from the debits made after now - kept_ms: the day and the slack.
  static constexpr int64_t kept_ms = risk_day_ms + slack_ms;

  struct Debit {
    int64_t created_at_ms = 0;
    int64_t amount = 0;
  };
  // From the debits read (any order) as of `now_ms`.
  DebitWindow(std::vector<Debit> debits, int64_t now_ms);
  // A debit committed after those kept. Its time may be a little before the newest kept
  // (another replica's clock): it is put in its place. One already past keeping is
  // dropped.
  void add(int64_t created_at_ms, int64_t amount);
  // The windows ending at `now_ms`.
  // REQUIRES: answers(now_ms).
  Velocity velocity(int64_t now_ms);
  // False for an instant more than slack_ms before the latest asked for: what left its
  // window since is forgotten, and the caller reads the day again.
  bool answers(int64_t now_ms) const { return now_ms >= asked_ms_ - slack_ms; }
  // Debits kept: the day's, and those that left it within slack_ms.
  size_t size() const { return debits_.size(); }

 private:
  std::deque<Debit> debits_;                  // by time, oldest first
  __int128 sum_ = 0;                          // of those kept; exact
  int64_t asked_ms_ = std::numeric_limits<int64_t>::min() / 4;  // the latest instant asked for
};

// What the rules look at: the debit, and its source's velocity with it included.
struct RiskInput {
  TransactionType type = TransactionType::transfer;
  int64_t amount = 0;
  std::string_view currency;
  std::optional<Velocity> with_this;  // nullopt: the source is no client's (a deposit)
};

struct RiskVerdict {
  RiskDecision decision = RiskDecision::allow;
  std::string rule;  // the rule that decided; empty for allow
};

// The first rule that matches, or allow.
RiskVerdict evaluate(const RiskRules& rules, const RiskInput& input);

// The body of a --risk-hook call: {"transactions": [...]}, the would-be transaction of
// each of `operations` at `items` (transfers, deposits, withdrawals and holds as posted;
// refunds with the id they refund).
std::string encode_risk_hook_request(std::span<const Operation> operations, std::span<const size_t> items);

// What an operation carries to the committer: the rules in force when it was received,
// the hook's decision on it, and whether a review may turn it into a hold (a single
// POST /transactions; elsewhere review acts as deny). Shared by a batch's items.
struct RiskCheck {
  std::shared_ptr<const RiskRules> rules;  // may be null: the hook alone
  std::optional<RiskDecision> hook;        // nullopt: no hook called
  std::string hook_reason;
  bool review_holds = false;
  int64_t review_hold_expiry_s = hold_expiry_s_default;
};

}  // namespace balanced::core
