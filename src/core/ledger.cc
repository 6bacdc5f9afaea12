#include "core/ledger.h"

#include <optional>

#include <algorithm>
#include <cassert>
#include <limits>

#include <boost/unordered/unordered_flat_set.hpp>

#include "core/audit.h"
#include "core/json_codec.h"
#include "core/money.h"

namespace balanced::core {

std::string issuer_account_number(std::string_view currency) {
  return std::string(issuer_prefix) + std::string(currency);
}

bool is_issuer_account(std::string_view number) { return number.starts_with(issuer_prefix); }

std::string deposit_transaction_id(std::string_view account_number) {
  return "$deposit:" + std::string(account_number);
}

std::string expire_transaction_id(std::string_view hold_id) { return "$expire:" + std::string(hold_id); }

std::string reference_key(std::string_view currency, std::string_view reference) {
  std::string key(currency);
  key.push_back(':');
  key.append(reference);
  return key;
}

bool may_act_for(const ActingFor& acting_for, std::string_view account) {
  return !acting_for || std::find(acting_for->begin(), acting_for->end(), account) != acting_for->end();
}

std::string_view type_name(TransactionType type) {
  switch (type) {
    case TransactionType::deposit:
      return "deposit";
    case TransactionType::withdrawal:
      return "withdrawal";
    case TransactionType::hold:
      return "hold";
    case TransactionType::capture:
      return "capture";
    case TransactionType::void_:
      return "void";
    case TransactionType::expire:
      return "expire";
    case TransactionType::refund:
      return "refund";
    case TransactionType::transfer:
      break;
  }
  return "transfer";
}

std::string_view hold_status_name(HoldStatus status) {
  switch (status) {
    case HoldStatus::pending:
      return "pending";
    case HoldStatus::captured:
      return "captured";
    case HoldStatus::voided:
      return "voided";
    case HoldStatus::expired:
      return "expired";
    case HoldStatus::none:
      break;
  }
  return "";
}

std::optional<HoldStatus> hold_status_from_name(std::string_view name) {
  for (HoldStatus status : {HoldStatus::none, HoldStatus::pending, HoldStatus::captured, HoldStatus::voided,
                            HoldStatus::expired}) {
    if (hold_status_name(status) == name) return status;
  }
  return std::nullopt;
}

std::string_view account_type_name(AccountType type) {
  switch (type) {
    case AccountType::savings:
      return "savings";
    case AccountType::credit:
      return "credit";
    case AccountType::checking:
      break;
  }
  return "checking";
}

std::string_view account_status_name(AccountStatus status) {
  switch (status) {
    case AccountStatus::frozen:
      return "frozen";
    case AccountStatus::closed:
      return "closed";
    case AccountStatus::active:
      break;
  }
  return "active";
}

std::optional<AccountType> account_type_from_name(std::string_view name) {
  for (AccountType type : {AccountType::checking, AccountType::savings, AccountType::credit}) {
    if (account_type_name(type) == name) return type;
  }
  return std::nullopt;
}

std::optional<AccountStatus> account_status_from_name(std::string_view name) {
  for (AccountStatus status : {AccountStatus::active, AccountStatus::frozen, AccountStatus::closed}) {
    if (account_status_name(status) == name) return status;
  }
  return std::nullopt;
}

__int128 available(const Account& account) {
  return static_cast<__int128>(account.balance) - account.pending_debits + account.overdraft_limit;
}

std::string_view status_name(TransactionStatus status) {
  return status == TransactionStatus::rejected ? "rejected" : "committed";
}

std::optional<TransactionType> type_from_name(std::string_view name) {
  for (int i = 0; i <= static_cast<int>(last_transaction_type); ++i) {
    const auto type = static_cast<TransactionType>(i);
    if (type_name(type) == name) return type;
  }
  return std::nullopt;
}

std::optional<TransactionStatus> status_from_name(std::string_view name) {
  if (name == "committed") return TransactionStatus::committed;
  if (name == "rejected") return TransactionStatus::rejected;
  return std::nullopt;
}

std::string transfer_request_hash(const Transfer& transfer) {
  std::string canonical;
  canonical.reserve(transfer.source.size() + transfer.destination.size() + 40);
  canonical.append(transfer.source).push_back('\n');
  canonical.append(transfer.destination).push_back('\n');
  canonical.append(std::to_string(transfer.amount)).push_back('\n');
  canonical.append(transfer.currency);
  return to_hex(sha256(canonical));
}

std::string posting_request_hash(TransactionType type, std::string_view account, const Transfer& posting) {
  // A field not sent is "-", one sent is a letter and its value: never the same text.
  std::string canonical(type_name(type));
  canonical.push_back('\n');
  canonical.append(account).push_back('\n');
  canonical.append(std::to_string(posting.amount)).push_back('\n');
  canonical.append(posting.currency.empty() ? "-" : "c" + posting.currency).push_back('\n');
  canonical.append(posting.reference.empty() ? "-" : "r" + posting.reference).push_back('\n');
  canonical.append(posting.metadata.empty() ? "-" : "m" + posting.metadata);
  return to_hex(sha256(canonical));
}

namespace {

// One field of a request hash: "-" when not sent, else a letter and the value, so an
// omitted field never hashes as any sent one.
void append_sent(std::string& canonical, char letter, std::string_view value, bool sent) {
  canonical.push_back('\n');
  if (!sent) {
    canonical.push_back('-');
    return;
  }
  canonical.push_back(letter);
  canonical.append(value);
}

}  // namespace

std::string hold_request_hash(const Transfer& hold) {
  std::string canonical(type_name(TransactionType::hold));
  canonical.push_back('\n');
  canonical.append(hold.source).push_back('\n');
  canonical.append(hold.destination).push_back('\n');
  canonical.append(std::to_string(hold.amount));
  append_sent(canonical, 'c', hold.currency, !hold.currency.empty());
  append_sent(canonical, 'e', std::to_string(hold.expires_in_s), hold.expires_in_s > 0);
  append_sent(canonical, 'm', hold.metadata, !hold.metadata.empty());
  return to_hex(sha256(canonical));
}

std::string settle_request_hash(const SettleHold& settle) {
  std::string canonical(type_name(settle.type));
  canonical.push_back('\n');
  canonical.append(settle.hold_id);
  append_sent(canonical, 'a', settle.amount ? std::to_string(*settle.amount) : "", settle.amount.has_value());
  return to_hex(sha256(canonical));
}

std::string refund_request_hash(const Refund& refund) {
  std::string canonical(type_name(TransactionType::refund));
  canonical.push_back('\n');
  canonical.append(refund.original_id);
  append_sent(canonical, 'a', refund.amount ? std::to_string(*refund.amount) : "", refund.amount.has_value());
  append_sent(canonical, 'r', refund.reason, !refund.reason.empty());
  append_sent(canonical, 'm', refund.metadata, !refund.metadata.empty());
  return to_hex(sha256(canonical));
}

namespace {

// `names` sorted and unique, as strings. Views are sorted rather than strings: a swap
// moves 16 bytes, not a string, and a batch of 4,000 transfers names 8,000 accounts.
std::vector<std::string> sorted_unique(std::vector<std::string_view>& names) {
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return std::vector<std::string>(names.begin(), names.end());
}

}  // namespace

std::vector<std::string> required_accounts(std::span<const Operation> operations) {
  return required_accounts(operations, LedgerState{});
}

std::vector<std::string> required_accounts(std::span<const Operation> operations, const LedgerState& loaded) {
  std::vector<std::string> issuers;  // made here; the views below may point into them
  for (const auto& operation : operations) {
    if (const auto* create = std::get_if<CreateAccount>(&operation)) {
      issuers.push_back(issuer_account_number(create->currency));
    }
  }
  // Each name once before sorting: a large batch names the same few accounts many times
  // (the set grows with the distinct names, not with the batch).
  boost::unordered_flat_set<std::string_view> seen;
  size_t issuer = 0;
  for (const auto& operation : operations) {
    if (const auto* create = std::get_if<CreateAccount>(&operation)) {
      seen.insert(create->number);
      seen.insert(issuers[issuer++]);
    } else if (const auto* patch = std::get_if<PatchAccount>(&operation)) {
      seen.insert(patch->number);
    } else if (const auto* transfer = std::get_if<Transfer>(&operation)) {
      seen.insert(transfer->source);
      seen.insert(transfer->destination);
    } else {
      // A capture, void, expire or refund moves money between the parties of the stored
      // row it names: known once that row is loaded.
      const std::string& referenced = referenced_id(operation);
      if (auto row = loaded.existing.find(referenced); row != loaded.existing.end()) {
        seen.insert(row->second.source);
        seen.insert(row->second.destination);
      }
    }
  }
  std::vector<std::string_view> numbers(seen.begin(), seen.end());
  return sorted_unique(numbers);
}

const std::string& referenced_id(const Operation& operation) {
  static const std::string none;
  if (const auto* settle = std::get_if<SettleHold>(&operation)) return settle->hold_id;
  if (const auto* refund = std::get_if<Refund>(&operation)) return refund->original_id;
  return none;
}

std::vector<std::string> referenced_transactions(std::span<const Operation> operations) {
  std::vector<std::string_view> ids;
  for (const auto& operation : operations) {
    if (const std::string& id = referenced_id(operation); !id.empty()) ids.push_back(id);
  }
  return sorted_unique(ids);
}

std::vector<std::string> transaction_ids(std::span<const Operation> operations) {
  std::vector<std::string> deposits;  // made here; the views below may point into them
  for (const auto& operation : operations) {
    if (const auto* create = std::get_if<CreateAccount>(&operation)) {
      deposits.push_back(deposit_transaction_id(create->number));
    }
  }
  std::vector<std::string_view> ids;
  ids.reserve(operations.size());
  size_t deposit = 0;
  for (const auto& operation : operations) {
    if (std::holds_alternative<CreateAccount>(operation)) {
      ids.push_back(deposits[deposit++]);
    } else if (const auto* transfer = std::get_if<Transfer>(&operation)) {
      ids.push_back(transfer->id);
    } else if (const auto* settle = std::get_if<SettleHold>(&operation)) {
      ids.push_back(settle->id);
      ids.push_back(settle->hold_id);
    } else if (const auto* refund = std::get_if<Refund>(&operation)) {
      ids.push_back(refund->id);
      ids.push_back(refund->original_id);
    }  // a PATCH has no id: it is idempotent by what it asks for
  }
  return sorted_unique(ids);
}

std::vector<std::string> reference_keys(std::span<const Operation> operations) {
  std::vector<std::string> keys;
  for (const auto& operation : operations) {
    const auto* posting = std::get_if<Transfer>(&operation);
    if (posting != nullptr && posting->unique_reference && !posting->reference.empty()) {
      keys.push_back(reference_key(posting->currency, posting->reference));
    }
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

std::vector<std::string> velocity_sources(std::span<const Operation> operations, const LedgerState& loaded) {
  std::vector<std::string> sources;
  const auto counts = [](const std::shared_ptr<const RiskCheck>& risk) {
    return risk != nullptr && risk->rules != nullptr && risk->rules->counts_velocity;
  };
  for (const auto& operation : operations) {
    if (const auto* transfer = std::get_if<Transfer>(&operation)) {
      if (counts(transfer->risk) && counts_as_debit(transfer->type)) sources.push_back(transfer->source);
    } else if (const auto* refund = std::get_if<Refund>(&operation)) {
      if (!counts(refund->risk)) continue;
      if (auto original = loaded.existing.find(refund->original_id); original != loaded.existing.end()) {
        sources.push_back(original->second.destination);
        continue;
      }
      // An original in this batch: its destination is the refund's source.
      for (const auto& earlier : operations) {
        const auto* paid = std::get_if<Transfer>(&earlier);
        if (paid != nullptr && paid->id == refund->original_id) sources.push_back(paid->destination);
      }
    }
  }
  std::sort(sources.begin(), sources.end());
  sources.erase(std::unique(sources.begin(), sources.end()), sources.end());
  return sources;
}

namespace {

class BatchApplier {
 public:
  // At most one outcome, row and audit record per operation.
  BatchApplier(LedgerState& state, int64_t now_ms, size_t operations)
      : state_(state), now_ms_(now_ms) {
    effects_.outcomes.reserve(operations);
    effects_.outcome_transaction.reserve(operations);
    effects_.transactions.reserve(operations);
    effects_.audit.reserve(operations);
    effects_.events.reserve(operations);
    batch_ids_.reserve(operations);
  }

  void apply(const Operation& operation) {
    if (const auto* create = std::get_if<CreateAccount>(&operation)) {
      apply_create(*create);
    } else if (const auto* patch = std::get_if<PatchAccount>(&operation)) {
      apply_patch(*patch);
    } else if (const auto* settle = std::get_if<SettleHold>(&operation)) {
      apply_settle(*settle);
    } else if (const auto* refund = std::get_if<Refund>(&operation)) {
      apply_refund(*refund);
    } else {
      apply_transfer(std::get<Transfer>(operation));
    }
  }

  // Applies linked transfers (an atomic batch): all of them, or, when any fails, none:
  // the state and the effects are put back as they were before the first, nothing of
  // them is recorded, and every one is rejected: the failing ones with their own code,
  // the others with linked_failed.
  void apply_linked(std::span<const Operation> group) {
    // What the group may change, as it was.
    std::vector<std::pair<std::string, std::optional<Account>>> saved;
    for (const auto& operation : group) {
      const auto& transfer = std::get<Transfer>(operation);
      for (const std::string* number : {&transfer.source, &transfer.destination}) {
        auto found = state_.accounts.find(*number);
        saved.emplace_back(*number, found == state_.accounts.end() ? std::nullopt : std::optional(found->second));
      }
    }
    const NameSet touched_before = touched_;
    std::vector<std::pair<std::string, Velocity>> velocity_before;
    for (const auto& [number, account] : saved) {
      if (auto v = state_.velocity.find(number); v != state_.velocity.end()) velocity_before.emplace_back(number, v->second);
    }
    const size_t outcomes_before = effects_.outcomes.size();
    const size_t transactions_before = effects_.transactions.size();
    const size_t audit_before = effects_.audit.size();
    const size_t events_before = effects_.events.size();
    for (const auto& operation : group) apply(operation);
    size_t failed = 0;
    for (size_t i = outcomes_before; i < effects_.outcomes.size(); ++i) {
      if (effects_.outcomes[i].code != Code::ok) ++failed;
    }
    if (failed == 0) return;
    // Put everything back, latest first so each account gets its state from before.
    for (auto it = saved.rbegin(); it != saved.rend(); ++it) {
      if (it->second) {
        state_.accounts.insert_or_assign(it->first, *it->second);
      } else {
        state_.accounts.erase(it->first);
      }
    }
    for (size_t i = transactions_before; i < effects_.transactions.size(); ++i) {
      batch_ids_.erase(effects_.transactions[i].id);
    }
    effects_.transactions.resize(transactions_before);
    effects_.audit.resize(audit_before);
    effects_.events.resize(events_before);
    touched_ = touched_before;
    for (const auto& [number, velocity] : velocity_before) state_.velocity[number] = velocity;
    for (size_t i = outcomes_before; i < effects_.outcomes.size(); ++i) {
      Outcome& outcome = effects_.outcomes[i];
      if (outcome.code == Code::ok) {
        outcome = Outcome{.code = Code::linked_failed,
                          .detail = std::to_string(failed) + " linked transfer(s) of the atomic batch failed"};
      } else {
        outcome.transaction.reset();
        outcome.replayed = false;
      }
      effects_.outcome_transaction[i] = -1;
    }
  }

  BatchEffects finish() && {
    // By number, as a store locks them.
    std::vector<const std::string*> touched;
    touched.reserve(touched_.size());
    for (const auto& number : touched_) touched.push_back(&number);
    std::sort(touched.begin(), touched.end(), [](const std::string* a, const std::string* b) { return *a < *b; });
    effects_.created.reserve(created_.size());
    effects_.updated.reserve(touched.size() - std::min(touched.size(), created_.size()));
    for (const std::string* number : touched) {
      const Account& account = state_.accounts.at(*number);
      if (created_.contains(*number)) {
        effects_.created.push_back(account);
      } else {
        effects_.updated.push_back(account);
      }
    }
    // Issuers first, so that a store with foreign keys could insert them in order.
    std::stable_partition(effects_.created.begin(), effects_.created.end(),
                          [](const Account& a) { return is_issuer_account(a.number); });
    return std::move(effects_);
  }

 private:
  // Ends an operation. A committed row it recorded is an event, its parties' balances
  // as they stand now.
  void finish_outcome(Outcome outcome, int transaction_index) {
    if (outcome.code == Code::ok && transaction_index >= 0 &&
        effects_.transactions[transaction_index].status == TransactionStatus::committed) {
      const Transaction& row = effects_.transactions[transaction_index];
      Event event{.kind = EventKind::transaction, .occurred_at_ms = now_ms_, .transaction_index = transaction_index};
      event.balances.reserve(2);
      for (const std::string* number : {&row.source, &row.destination}) {
        if (auto found = state_.accounts.find(*number); found != state_.accounts.end()) {
          event.balances.push_back(event_balance(found->second));
        }
      }
      effects_.events.push_back(std::move(event));
    }
    effects_.outcomes.push_back(std::move(outcome));
    effects_.outcome_transaction.push_back(transaction_index);
  }

  static EventBalance event_balance(const Account& account) {
    const __int128 free = available(account);
    const __int128 shown = std::clamp<__int128>(free, std::numeric_limits<int64_t>::min(),
                                                std::numeric_limits<int64_t>::max());
    return EventBalance{.account_number = account.number,
                        .balance = account.balance,
                        .available = static_cast<int64_t>(shown),
                        .version = account.version};
  }

  // An account created or changed by a PATCH: an event with the account as it is now.
  void account_event(EventKind kind, const Account& account) {
    Event event{.kind = kind, .occurred_at_ms = now_ms_, .account = account};
    event.balances.push_back(event_balance(account));
    effects_.events.push_back(std::move(event));
  }

  // Refuses an operation before anything is recorded: no row, no audit record.
  void refuse(Code code, std::string detail) {
    finish_outcome(Outcome{.code = code, .detail = std::move(detail)}, -1);
  }

  int record(Transaction transaction) {
    // A debit the risk windows count, of a source they are kept for: later operations of
    // the batch see it.
    if (transaction.status == TransactionStatus::committed && counts_as_debit(transaction.type)) {
      if (auto v = state_.velocity.find(transaction.source); v != state_.velocity.end()) {
        add_debit(v->second, transaction.amount);
      }
    }
    batch_ids_.emplace(transaction.id, effects_.transactions.size());
    effects_.transactions.push_back(std::move(transaction));
    return static_cast<int>(effects_.transactions.size() - 1);
  }

  // Records an audit entry; its detail is `detail`, or (when empty) the JSON of the
  // transaction at `transaction_index`, rendered at sealing.
  void audit(std::string_view operation_type, const std::string& operator_name,
             std::string detail, int transaction_index) {
    AuditRecord record;
    record.operation_type = std::string(operation_type);
    record.operator_name = operator_name.empty() ? "anonymous" : operator_name;
    record.operation_time_ms = now_ms_;
    record.detail = std::move(detail);
    record.transaction_index = record.detail.empty() ? transaction_index : -1;
    effects_.audit.push_back(std::move(record));
  }

  void change(Account& account, int64_t new_balance) {
    account.balance = new_balance;
    account.version += 1;
    account.updated_at_ms = now_ms_;
    touched_.insert(account.number);
  }

  // Changes the state of an earlier row (a hold ended, a transfer refunded) in place and
  // returns it. A row of this batch is written in its final state; a stored one is
  // rewritten (effects.transaction_updates, one entry per row, its last state).
  // REQUIRES: earlier(id) found it.
  template <typename Change>
  const Transaction& update_earlier(const std::string& id, Change change) {
    if (auto in_batch = batch_ids_.find(id); in_batch != batch_ids_.end()) {
      Transaction& row = effects_.transactions[in_batch->second];
      change(row);
      return row;
    }
    Transaction& row = state_.existing.at(id);
    change(row);
    if (auto known = updated_rows_.find(id); known != updated_rows_.end()) {
      effects_.transaction_updates[known->second] = row;
    } else {
      updated_rows_.emplace(id, effects_.transaction_updates.size());
      effects_.transaction_updates.push_back(row);
    }
    return row;
  }

  // The checks every debit of `from` to `to` passes, in order; the refusal, if any.
  std::optional<std::pair<Code, std::string>> refuse_debit(const Account& from, const Account& to, int64_t amount,
                                                           bool check_available) {
    for (const Account* party : {&from, &to}) {
      if (party->status == AccountStatus::closed) {
        return std::pair(Code::account_closed, "account " + party->number + " is closed");
      }
    }
    if (from.status == AccountStatus::frozen) {
      return std::pair(Code::account_frozen, "account " + from.number + " is frozen: it takes credits only");
    }
    // Every debit checks what the account may spend (pending credits never count).
    if (check_available && amount > available(from)) {
      return std::pair(Code::insufficient_funds,
                       "account " + from.number + " has " + std::to_string(from.balance) +
                           (from.pending_debits > 0 ? ", " + std::to_string(from.pending_debits) + " of it held," : "") +
                           " and may go down to " + std::to_string(-from.overdraft_limit));
    }
    return std::nullopt;
  }

  // The risk decision on a debit that passed every other check (DESIGN.md section 11):
  // the first rule that matches, or the hook's when that is more severe. nullopt when
  // the operation carries no rules and no hook decision (nothing is recorded).
  static std::optional<RiskVerdict> decide_risk(const RiskCheck* check, const RiskInput& input) {
    if (check == nullptr) return std::nullopt;
    RiskVerdict verdict;
    if (check->rules != nullptr) verdict = evaluate(*check->rules, input);
    // The hook's, when more severe, and when no rule matched (its allow is recorded).
    if (check->hook && (*check->hook > verdict.decision || verdict.decision == RiskDecision::allow)) {
      verdict = RiskVerdict{.decision = *check->hook, .rule = std::string(risk_hook_rule)};
    }
    if (verdict.decision == RiskDecision::allow && !check->hook) return std::nullopt;
    return verdict;
  }

  RiskInput risk_input(TransactionType type, const Account& from, int64_t amount) const {
    RiskInput input{.type = type, .amount = amount, .currency = from.currency};
    if (counts_as_debit(type)) {
      auto v = state_.velocity.find(from.number);
      Velocity with_this = v == state_.velocity.end() ? Velocity{} : v->second;
      add_debit(with_this, amount);
      input.with_this = with_this;
    }
    return input;
  }

  static std::string risk_detail(const RiskVerdict& verdict, const RiskCheck& check, TransactionType type,
                                 bool review_as_deny) {
    const std::string verb = verdict.decision == RiskDecision::deny ? " denies this " : " holds for review this ";
    std::string detail = verdict.rule == risk_hook_rule
                             ? "the risk hook" + verb + std::string(type_name(type)) +
                                   (check.hook_reason.empty() ? "" : ": " + check.hook_reason)
                             : "risk rule " + verdict.rule + verb + std::string(type_name(type));
    if (review_as_deny) detail += " (a review holds only a single POST /transactions; here it denies)";
    return detail;
  }

  // The transaction with this id recorded earlier, in a committed batch or this one.
  const Transaction* earlier(const std::string& id) const {
    if (auto in_batch = batch_ids_.find(id); in_batch != batch_ids_.end()) {
      return &effects_.transactions[in_batch->second];
    }
    if (auto stored = state_.existing.find(id); stored != state_.existing.end()) {
      return &stored->second;
    }
    return nullptr;
  }

  void apply_create(const CreateAccount& create) {
    if (create.type == AccountType::savings && create.overdraft_limit != 0) {
      return refuse(Code::invalid_request, "overdraftLimit: a savings account's is 0");
    }
    if (auto existing = state_.accounts.find(create.number); existing != state_.accounts.end()) {
      // The account and its opening deposit ride along: a retry after a lost COMMIT tells
      // its own creation from another's by them (engine::Engine::claim_own_commits).
      Outcome exists{.code = Code::account_exists,
                     .detail = "account " + create.number + " already exists",
                     .account = existing->second};
      if (const Transaction* deposit = earlier(deposit_transaction_id(create.number))) exists.transaction = *deposit;
      finish_outcome(std::move(exists), -1);
      return;
    }
    const std::string issuer_number = issuer_account_number(create.currency);
    // A pointer, found again after the account is added (which may move it).
    Account* issuer = nullptr;
    if (auto found = state_.accounts.find(issuer_number); found != state_.accounts.end()) issuer = &found->second;
    const bool issuer_is_new = issuer == nullptr;
    int64_t issuer_balance = issuer_is_new ? 0 : issuer->balance;
    if (!issuer_is_new && issuer->currency != create.currency) {
      finish_outcome(Outcome{.code = Code::internal, .detail = "issuer currency differs"}, -1);
      return;
    }
    if (create.initial_balance > 0) {
      auto after = checked_sub(issuer_balance, create.initial_balance);
      if (!after) {
        finish_outcome(Outcome{.code = Code::balance_overflow,
                               .detail = "the issuer of " + create.currency +
                                         " cannot issue that much more money"},
                       -1);
        return;
      }
      issuer_balance = *after;
    }
    if (issuer_is_new) {
      Account fresh{.number = issuer_number,
                    .currency = create.currency,
                    .balance = 0,
                    .overdraft_limit = issuer_overdraft_limit,
                    .version = 0,
                    .created_at_ms = now_ms_,
                    .updated_at_ms = now_ms_};
      issuer = &state_.accounts.emplace(issuer_number, std::move(fresh)).first->second;
      created_.insert(issuer_number);
      touched_.insert(issuer_number);
    }
    Account account{.number = create.number,
                    .currency = create.currency,
                    .balance = 0,
                    .overdraft_limit = create.overdraft_limit,
                    .version = 0,
                    .created_at_ms = now_ms_,
                    .updated_at_ms = now_ms_,
                    .type = create.type,
                    .metadata = create.metadata};
    auto& stored = state_.accounts.emplace(create.number, std::move(account)).first->second;
    issuer = &state_.accounts.find(issuer_number)->second;
    created_.insert(create.number);
    touched_.insert(create.number);

    account_event(EventKind::account_created, stored);  // before its deposit's event
    int transaction_index = -1;
    if (create.initial_balance > 0) {
      change(*issuer, issuer_balance);
      change(stored, create.initial_balance);
      transaction_index = record(Transaction{.id = deposit_transaction_id(create.number),
                                             .type = TransactionType::deposit,
                                             .source = issuer_number,
                                             .destination = create.number,
                                             .amount = create.initial_balance,
                                             .currency = create.currency,
                                             .status = TransactionStatus::committed,
                                             .source_balance_after = issuer_balance,
                                             .destination_balance_after = create.initial_balance,
                                             .created_at_ms = now_ms_,
                                             .source_version_after = issuer->version,
                                             .destination_version_after = stored.version});
    }
    // The account as created: later operations of the batch may change it.
    audit("account_create", create.operator_name, encode_account(stored), -1);
    Outcome outcome{.code = Code::ok, .account = stored};
    if (transaction_index >= 0) outcome.transaction = effects_.transactions[transaction_index];
    finish_outcome(std::move(outcome), transaction_index);
  }

  // PATCH /accounts/{n}: every change checked first, then all applied as one new version
  // with one audit record; a PATCH that changes nothing changes nothing (no version, no
  // record), so a retried one is harmless. Not a transaction row: it has no id.
  void apply_patch(const PatchAccount& patch) {
    auto found = state_.accounts.find(patch.number);
    if (found == state_.accounts.end() || is_issuer_account(patch.number)) {
      return refuse(Code::account_not_found, "account " + patch.number + " does not exist");
    }
    Account& account = found->second;
    if (patch.expected_version && *patch.expected_version != account.version) {
      return refuse(Code::version_mismatch, "account " + account.number + " is at version " +
                                                std::to_string(account.version) + ", not " +
                                                std::to_string(*patch.expected_version));
    }
    Account changed = account;
    std::string changes;  // the audit record's {"field":{"from":...,"to":...}} members
    auto note = [&changes](std::string_view field, const std::string& from, const std::string& to) {
      changes += (changes.empty() ? "\"" : ",\"") + std::string(field) + "\":{\"from\":" + from + ",\"to\":" + to + "}";
    };
    if (patch.overdraft_limit && *patch.overdraft_limit != account.overdraft_limit) {
      if (account.type == AccountType::savings) {
        return refuse(Code::invalid_request, "overdraftLimit: a savings account's is 0");
      }
      changed.overdraft_limit = *patch.overdraft_limit;
      note("overdraftLimit", std::to_string(account.overdraft_limit), std::to_string(changed.overdraft_limit));
    }
    if (patch.metadata_patch) {
      auto merged = merge_metadata(account.metadata, *patch.metadata_patch);
      if (!merged.ok()) return refuse(merged.error().code, merged.error().detail);
      if (merged.value() != account.metadata) {
        changed.metadata = std::move(merged.value());
        note("metadata", account.metadata.empty() ? "null" : account.metadata,
             changed.metadata.empty() ? "null" : changed.metadata);
      }
    }
    if (patch.status && *patch.status != account.status) {
      if (account.status == AccountStatus::closed) {
        return refuse(Code::invalid_state_transition, "account " + account.number + " is closed: that is final");
      }
      if (*patch.status == AccountStatus::closed) {
        if (account.balance != 0) {
          return refuse(Code::account_not_empty, "account " + account.number + " holds " +
                                                     std::to_string(account.balance) + "; move it out first");
        }
        if (account.pending_debits != 0 || account.pending_credits != 0) {
          return refuse(Code::account_has_pending_holds, "account " + account.number + " has pending holds");
        }
      }
      changed.status = *patch.status;
      note("status", json_string(account_status_name(account.status)), json_string(account_status_name(changed.status)));
    }
    if (changes.empty()) {  // nothing to change: the same answer, no new version
      finish_outcome(Outcome{.code = Code::ok, .account = account}, -1);
      return;
    }
    if (account.status == AccountStatus::closed) {
      return refuse(Code::invalid_state_transition, "account " + account.number + " is closed: that is final");
    }
    changed.version += 1;
    changed.updated_at_ms = now_ms_;
    account = std::move(changed);
    touched_.insert(account.number);
    account_event(EventKind::account_updated, account);
    audit("account_update", patch.operator_name,
          "{\"accountNumber\":" + json_string(account.number) + ",\"version\":" + std::to_string(account.version) +
              ",\"changes\":{" + changes + "},\"reason\":" + json_string(patch.reason) + "}",
          -1);
    finish_outcome(Outcome{.code = Code::ok, .account = account}, -1);
  }

  // What a row records of its risk decision (Transaction::risk_decision, risk_rule).
  struct Risk {
    std::string decision;
    std::string rule;
  };

  void reject(const Transfer& transfer, Code code, std::string detail, std::string currency, Risk risk = {}) {
    int transaction_index = record(Transaction{.id = transfer.id,
                                               .type = transfer.type,
                                               .source = transfer.source,
                                               .destination = transfer.destination,
                                               .amount = transfer.amount,
                                               .currency = std::move(currency),
                                               .status = TransactionStatus::rejected,
                                               .reject_code = code,
                                               .request_hash = transfer.request_hash,
                                               .client_timestamp = transfer.client_timestamp,
                                               .created_at_ms = now_ms_,
                                               .reference = transfer.reference,
                                               .metadata = transfer.metadata,
                                               .risk_decision = std::move(risk.decision),
                                               .risk_rule = std::move(risk.rule)});
    const Transaction& row = effects_.transactions[transaction_index];
    audit(std::string(type_name(transfer.type)) + "_rejected", transfer.operator_name, {}, transaction_index);
    Outcome outcome{.code = code, .detail = std::move(detail), .transaction = row};
    if (transfer.type == TransactionType::hold) outcome.hold = row;
    finish_outcome(std::move(outcome), transaction_index);
  }

  // Records `row` (status, code and time set here) as refused, with its audit record.
  void reject_row(Transaction row, Code code, std::string detail, const std::string& operator_name,
                  std::optional<Transaction> hold = std::nullopt) {
    row.status = TransactionStatus::rejected;
    row.reject_code = code;
    row.created_at_ms = now_ms_;
    const std::string operation_type = std::string(type_name(row.type)) + "_rejected";
    const int transaction_index = record(std::move(row));
    audit(operation_type, operator_name, {}, transaction_index);
    finish_outcome(Outcome{.code = code,
                           .detail = std::move(detail),
                           .transaction = effects_.transactions[transaction_index],
                           .hold = std::move(hold)},
                   transaction_index);
  }

  // A replay of the operation that wrote `before` (same id): its first answer, or a
  // conflict when the request differs.
  void replay(const Transaction& before, const std::string& request_hash, std::optional<Transaction> hold = std::nullopt) {
    if (before.request_hash != request_hash) {
      finish_outcome(Outcome{.code = Code::idempotency_conflict,
                             .detail = "transaction " + before.id + " was already used for a different request"},
                     -1);
      return;
    }
    Outcome outcome{.code = before.status == TransactionStatus::committed ? Code::ok : before.reject_code,
                    .replayed = true,
                    .transaction = before,
                    .hold = std::move(hold)};
    if (outcome.code != Code::ok) {
      outcome.detail = "rejected earlier: " + std::string(code_name(outcome.code));
      if (!before.risk_rule.empty()) outcome.detail += " (" + before.risk_rule + ")";
    }
    finish_outcome(std::move(outcome), -1);
  }

  // POST /holds/{id}/capture, /void and the sweeper's expire: ends a pending hold once.
  void apply_settle(const SettleHold& settle) {
    const Transaction* held = earlier(settle.hold_id);
    const bool is_hold = held != nullptr && held->type == TransactionType::hold;
    if (const Transaction* before = earlier(settle.id)) {
      if (settle.type == TransactionType::expire) {  // expired already: nothing to do
        finish_outcome(Outcome{.code = Code::ok, .replayed = true, .transaction = *before,
                               .hold = is_hold ? std::optional(*held) : std::nullopt},
                       -1);
        return;
      }
      replay(*before, settle.request_hash, is_hold ? std::optional(*held) : std::nullopt);
      return;
    }
    // Unknown, or someone else's: refused before anything is recorded.
    if (!is_hold) return refuse(Code::hold_not_found, "hold " + settle.hold_id + " does not exist");
    const Transaction hold = *held;
    // A hold a risk review made: a reviewer settles it whoever its parties are; its
    // destination may void it, never capture it.
    const bool review_hold = hold.risk_decision == risk_decision_name(RiskDecision::review);
    if (!(review_hold && settle.reviewer) && !may_act_for(settle.acting_for, hold.destination)) {
      return refuse(Code::forbidden, "the token does not act for account " + hold.destination +
                                         ", the destination of hold " + hold.id);
    }
    if (settle.type == TransactionType::capture && review_hold && !settle.reviewer) {
      return refuse(Code::forbidden, "hold " + hold.id + " was made by risk review " + hold.risk_rule +
                                         ": only scope admin or risk:review captures it");
    }
    const bool expire = settle.type == TransactionType::expire;
    const bool capture = settle.type == TransactionType::capture;
    Transaction row{.id = settle.id,
                    .type = settle.type,
                    .source = hold.source,
                    .destination = hold.destination,
                    .amount = capture ? settle.amount.value_or(hold.amount) : hold.amount,
                    .currency = hold.currency,
                    .request_hash = settle.request_hash,
                    .client_timestamp = settle.client_timestamp,
                    .created_at_ms = now_ms_,
                    .hold_id = hold.id};
    std::string not_pending;
    if (hold.status != TransactionStatus::committed) {
      not_pending = "hold " + hold.id + " was rejected: " + std::string(code_name(hold.reject_code));
    } else if (hold.hold_status != HoldStatus::pending) {
      not_pending = "hold " + hold.id + " is " + std::string(hold_status_name(hold.hold_status));
    } else if (!expire && now_ms_ >= hold.expires_at_ms) {
      not_pending = "hold " + hold.id + " is expired";
    } else if (expire && now_ms_ < hold.expires_at_ms) {
      return refuse(Code::hold_not_pending, "hold " + hold.id + " is not due to expire yet");
    }
    if (!not_pending.empty()) {
      // The sweeper's expire is never a client's request: nothing to record.
      if (expire) return refuse(Code::hold_not_pending, std::move(not_pending));
      return reject_row(std::move(row), Code::hold_not_pending, std::move(not_pending), settle.operator_name, hold);
    }
    if (capture && row.amount > hold.amount) {
      return reject_row(std::move(row), Code::exceeds_hold_amount,
                        "the hold is " + std::to_string(hold.amount) + "; a capture may take at most that",
                        settle.operator_name, hold);
    }
    auto source = state_.accounts.find(hold.source);
    auto destination = state_.accounts.find(hold.destination);
    if (source == state_.accounts.end() || destination == state_.accounts.end()) {
      return refuse(Code::internal, "the parties of hold " + hold.id + " are missing");
    }
    Account& from = source->second;
    Account& to = destination->second;
    int64_t from_balance = from.balance;
    int64_t to_balance = to.balance;
    if (capture) {
      // The money was reserved: only the accounts' states are checked again.
      if (auto refusal = refuse_debit(from, to, row.amount, false)) {
        return reject_row(std::move(row), refusal->first, std::move(refusal->second), settle.operator_name, hold);
      }
      auto from_after = checked_sub(from.balance, row.amount);
      auto to_after = checked_add(to.balance, row.amount);
      if (!from_after || !to_after) {
        return reject_row(std::move(row), Code::balance_overflow, "the capture would overflow a balance",
                          settle.operator_name, hold);
      }
      from_balance = *from_after;
      to_balance = *to_after;
    }
    from.pending_debits -= hold.amount;
    to.pending_credits -= hold.amount;
    change(from, from_balance);
    change(to, to_balance);
    row.status = TransactionStatus::committed;
    row.source_balance_after = from.balance;
    row.destination_balance_after = to.balance;
    row.source_version_after = from.version;
    row.destination_version_after = to.version;
    const Transaction& ended = update_earlier(hold.id, [&](Transaction& held_row) {
      held_row.hold_status = capture ? HoldStatus::captured : expire ? HoldStatus::expired : HoldStatus::voided;
      held_row.settled_amount = capture ? row.amount : 0;
      held_row.settled_by = row.id;
    });
    const int transaction_index = record(std::move(row));
    audit(type_name(settle.type), settle.operator_name.empty() && expire ? "sweeper" : settle.operator_name, {},
          transaction_index);
    finish_outcome(Outcome{.code = Code::ok, .transaction = effects_.transactions[transaction_index], .hold = ended},
                   transaction_index);
  }

  // POST /transactions/{id}/refunds: money of a committed transfer or capture given back,
  // never more in all than it moved (Stripe's partial refunds).
  void apply_refund(const Refund& refund) {
    if (const Transaction* before = earlier(refund.id)) return replay(*before, refund.request_hash);
    const Transaction* found = earlier(refund.original_id);
    if (found == nullptr) return refuse(Code::not_found, "transaction " + refund.original_id + " does not exist");
    const Transaction& original = *found;  // stable: a map node or a reserved vector's row
    if (!may_act_for(refund.acting_for, original.destination)) {
      return refuse(Code::forbidden, "the token does not act for account " + original.destination +
                                         ", the destination of transaction " + original.id);
    }
    Transaction row{.id = refund.id,
                    .type = TransactionType::refund,
                    .source = original.destination,
                    .destination = original.source,
                    .amount = refund.amount.value_or(0),
                    .currency = original.currency,
                    .request_hash = refund.request_hash,
                    .client_timestamp = refund.client_timestamp,
                    .created_at_ms = now_ms_,
                    .metadata = refund.metadata,
                    .refund_of = original.id,
                    .reason = refund.reason};
    const bool refundable = original.status == TransactionStatus::committed &&
                            (original.type == TransactionType::transfer || original.type == TransactionType::capture);
    if (!refundable) {
      return reject_row(std::move(row), Code::not_refundable,
                        "transaction " + original.id + " is a " +
                            (original.status == TransactionStatus::committed ? std::string(type_name(original.type))
                                                                             : "rejected " + std::string(type_name(original.type))) +
                            "; only a committed transfer or capture is refundable",
                        refund.operator_name);
    }
    const int64_t remainder = original.amount - original.settled_amount;
    row.amount = refund.amount.value_or(remainder);
    if (row.amount <= 0 || row.amount > remainder) {
      return reject_row(std::move(row), Code::exceeds_refundable_amount,
                        remainder == 0 ? "transaction " + original.id + " is refunded in full"
                                       : std::to_string(remainder) + " of transaction " + original.id +
                                             " is left to refund",
                        refund.operator_name);
    }
    auto source = state_.accounts.find(row.source);
    auto destination = state_.accounts.find(row.destination);
    if (source == state_.accounts.end() || destination == state_.accounts.end()) {
      return refuse(Code::internal, "the parties of transaction " + original.id + " are missing");
    }
    Account& from = source->second;
    Account& to = destination->second;
    if (auto refusal = refuse_debit(from, to, row.amount, true)) {
      return reject_row(std::move(row), refusal->first, std::move(refusal->second), refund.operator_name);
    }
    if (auto verdict = decide_risk(refund.risk.get(), risk_input(TransactionType::refund, from, row.amount))) {
      row.risk_decision = std::string(risk_decision_name(verdict->decision));
      row.risk_rule = verdict->rule;
      if (verdict->decision != RiskDecision::allow) {
        row.risk_decision = std::string(risk_decision_name(RiskDecision::deny));
        std::string detail = risk_detail(*verdict, *refund.risk, TransactionType::refund,
                                         verdict->decision == RiskDecision::review);
        return reject_row(std::move(row), Code::risk_denied, std::move(detail), refund.operator_name);
      }
    }
    auto from_after = checked_sub(from.balance, row.amount);
    auto to_after = checked_add(to.balance, row.amount);
    if (!from_after || !to_after) {
      return reject_row(std::move(row), Code::balance_overflow, "the refund would overflow a balance",
                        refund.operator_name);
    }
    change(from, *from_after);
    change(to, *to_after);
    row.status = TransactionStatus::committed;
    row.source_balance_after = from.balance;
    row.destination_balance_after = to.balance;
    row.source_version_after = from.version;
    row.destination_version_after = to.version;
    update_earlier(original.id, [&](Transaction& refunded) { refunded.settled_amount += row.amount; });
    const int transaction_index = record(std::move(row));
    audit("refund", refund.operator_name, {}, transaction_index);
    finish_outcome(Outcome{.code = Code::ok, .transaction = effects_.transactions[transaction_index]},
                   transaction_index);
  }

  void apply_transfer(const Transfer& transfer) {
    if (const Transaction* before = earlier(transfer.id)) {
      // A hold's replay answers the hold as it stands now.
      // So does a transfer a risk review made a hold.
      replay(*before, transfer.request_hash,
             before->type == TransactionType::hold ? std::optional(*before) : std::nullopt);
      return;
    }
    // A rail's reference is one payment: under another id it is a duplicate, refused
    // before anything is recorded (no row: the id stays free for the right request).
    std::string claim;
    if (transfer.unique_reference && !transfer.reference.empty()) {
      claim = reference_key(transfer.currency, transfer.reference);
      if (auto owner = state_.reference_owners.find(claim); owner != state_.reference_owners.end()) {
        return refuse(Code::duplicate_reference, "reference " + transfer.reference + " in " + transfer.currency +
                                                     " is transaction " + owner->second + "'s");
      }
    }
    if (transfer.source == transfer.destination) {
      reject(transfer, Code::same_account, "source and destination are the same account",
             transfer.currency);
      return;
    }
    auto source = state_.accounts.find(transfer.source);
    auto destination = state_.accounts.find(transfer.destination);
    // A deposit's or withdrawal's client account is named first: its issuer exists
    // whenever an account of that currency does.
    const bool client_is_destination = transfer.type == TransactionType::deposit;
    const auto client = client_is_destination ? destination : source;
    const auto other = client_is_destination ? source : destination;
    if (client == state_.accounts.end() || other == state_.accounts.end()) {
      if (client != state_.accounts.end() && transfer.type != TransactionType::transfer) {
        // No issuer of the currency named: the account holds another one.
        reject(transfer, Code::currency_mismatch,
               "account " + client->second.number + " holds " + client->second.currency + ", the " +
                   std::string(type_name(transfer.type)) + " names " + transfer.currency,
               transfer.currency);
        return;
      }
      const bool client_missing = client == state_.accounts.end();
      const std::string& missing = client_missing == client_is_destination ? transfer.destination : transfer.source;
      reject(transfer, Code::account_not_found, "account " + missing + " does not exist", transfer.currency);
      return;
    }
    Account& from = source->second;
    Account& to = destination->second;
    if (from.currency != to.currency ||
        (!transfer.currency.empty() && transfer.currency != from.currency)) {
      reject(transfer, Code::currency_mismatch,
             "source holds " + from.currency + ", destination holds " + to.currency +
                 (transfer.currency.empty() ? ""
                                            : ", the " + std::string(type_name(transfer.type)) + " names " +
                                                  transfer.currency),
             transfer.currency.empty() ? from.currency : transfer.currency);
      return;
    }
    const bool hold = transfer.type == TransactionType::hold;
    // A hold moves the pending amounts; anything else the balances.
    auto from_after = hold ? checked_add(from.pending_debits, transfer.amount) : checked_sub(from.balance, transfer.amount);
    auto to_after = hold ? checked_add(to.pending_credits, transfer.amount) : checked_add(to.balance, transfer.amount);
    if (!from_after || !to_after) {
      reject(transfer, Code::balance_overflow,
             "the " + std::string(type_name(transfer.type)) + " would overflow a balance", from.currency);
      return;
    }
    if (auto refusal = refuse_debit(from, to, transfer.amount, true)) {
      reject(transfer, refusal->first, std::move(refusal->second), from.currency);
      return;
    }
    Risk risk;
    if (auto verdict = decide_risk(transfer.risk.get(), risk_input(transfer.type, from, transfer.amount))) {
      risk = Risk{.decision = std::string(risk_decision_name(verdict->decision)), .rule = verdict->rule};
      // A review holds a single transfer for an operator (its pending amounts cannot
      // overflow: the checks above passed for the balances, and a hold moves pending
      // ones, checked here); anywhere else it denies.
      const bool holds = verdict->decision == RiskDecision::review && transfer.risk->review_holds &&
                         transfer.type == TransactionType::transfer &&
                         checked_add(from.pending_debits, transfer.amount) &&
                         checked_add(to.pending_credits, transfer.amount);
      if (holds) {
        Transfer held = transfer;
        held.expires_in_s = transfer.risk->review_hold_expiry_s;
        apply_hold(held, from, to, std::move(risk));
        return;
      }
      if (verdict->decision != RiskDecision::allow) {
        risk.decision = std::string(risk_decision_name(RiskDecision::deny));
        reject(transfer, Code::risk_denied,
               risk_detail(*verdict, *transfer.risk, transfer.type, verdict->decision == RiskDecision::review),
               from.currency, std::move(risk));
        return;
      }
    }
    if (hold) {
      apply_hold(transfer, from, to, std::move(risk));
      return;
    }
    change(from, *from_after);
    change(to, *to_after);
    int transaction_index = record(Transaction{.id = transfer.id,
                                               .type = transfer.type,
                                               .source = from.number,
                                               .destination = to.number,
                                               .amount = transfer.amount,
                                               .currency = from.currency,
                                               .status = TransactionStatus::committed,
                                               .source_balance_after = *from_after,
                                               .destination_balance_after = *to_after,
                                               .request_hash = transfer.request_hash,
                                               .client_timestamp = transfer.client_timestamp,
                                               .created_at_ms = now_ms_,
                                               .reference = transfer.reference,
                                               .metadata = transfer.metadata,
                                               .source_version_after = from.version,
                                               .destination_version_after = to.version,
                                               .risk_decision = std::move(risk.decision),
                                               .risk_rule = std::move(risk.rule)});
    const Transaction& row = effects_.transactions[transaction_index];
    if (!claim.empty()) {
      state_.reference_owners.emplace(claim, transfer.id);
      effects_.reference_claims.push_back(ReferenceClaim{.key = std::move(claim), .transaction_id = transfer.id});
    }
    audit(type_name(transfer.type), transfer.operator_name, {}, transaction_index);
    finish_outcome(Outcome{.code = Code::ok, .transaction = row}, transaction_index);
  }

  // A hold that passed every check of a debit: its amount pending on both sides.
  void apply_hold(const Transfer& hold, Account& from, Account& to, Risk risk) {
    from.pending_debits += hold.amount;
    to.pending_credits += hold.amount;
    change(from, from.balance);
    change(to, to.balance);
    const int64_t expires_in_s = hold.expires_in_s > 0 ? hold.expires_in_s : hold_expiry_s_default;
    const int transaction_index = record(Transaction{.id = hold.id,
                                                     .type = TransactionType::hold,
                                                     .source = from.number,
                                                     .destination = to.number,
                                                     .amount = hold.amount,
                                                     .currency = from.currency,
                                                     .status = TransactionStatus::committed,
                                                     .source_balance_after = from.balance,
                                                     .destination_balance_after = to.balance,
                                                     .request_hash = hold.request_hash,
                                                     .client_timestamp = hold.client_timestamp,
                                                     .created_at_ms = now_ms_,
                                                     .metadata = hold.metadata,
                                                     .source_version_after = from.version,
                                                     .destination_version_after = to.version,
                                                     .expires_at_ms = now_ms_ + expires_in_s * 1000,
                                                     .hold_status = HoldStatus::pending,
                                                     .risk_decision = std::move(risk.decision),
                                                     .risk_rule = std::move(risk.rule)});
    const Transaction& row = effects_.transactions[transaction_index];
    audit("hold", hold.operator_name, {}, transaction_index);
    finish_outcome(Outcome{.code = Code::ok, .transaction = row, .hold = row}, transaction_index);
  }

  LedgerState& state_;
  const int64_t now_ms_;
  BatchEffects effects_;
  // The accounts the batch changed and those it created, sorted by finish().
  using NameSet = boost::unordered_flat_set<std::string, StringHash, std::equal_to<>>;
  NameSet touched_;
  NameSet created_;
  FlatStringMap<size_t> batch_ids_;  // id -> index in the effects' transactions
  std::unordered_map<std::string, size_t> updated_rows_;  // id -> index in transaction_updates
};

}  // namespace

BatchEffects apply_batch(std::span<const Operation> operations, LedgerState& state,
                         int64_t now_ms) {
  BatchApplier applier(state, now_ms, operations.size());
  for (size_t i = 0; i < operations.size();) {
    const auto* transfer = std::get_if<Transfer>(&operations[i]);
    if (transfer == nullptr || transfer->link == 0) {
      applier.apply(operations[i++]);
      continue;
    }
    size_t end = i + 1;
    while (end < operations.size()) {
      const auto* next = std::get_if<Transfer>(&operations[end]);
      if (next == nullptr || next->link != transfer->link) break;
      ++end;
    }
    applier.apply_linked(operations.subspan(i, end - i));
    i = end;
  }
  BatchEffects effects = std::move(applier).finish();
  assert(effects.outcomes.size() == operations.size());
  return effects;
}

void render_audit_details(std::vector<AuditRecord>& audit,
                          const std::vector<Transaction>& transactions) {
  std::vector<Event> none;
  render_audit_and_events(audit, none, transactions);
}

std::string seal_audit(std::vector<AuditRecord>& audit,
                       const std::vector<Transaction>& transactions, std::string head) {
  if (head.empty()) head = genesis_hash();
  render_audit_details(audit, transactions);
  for (auto& record : audit) head = chain_audit_record(record, head);
  return head;
}

std::string event_type(const Event& event, const std::vector<Transaction>& transactions) {
  switch (event.kind) {
    case EventKind::account_created:
      return "account.created";
    case EventKind::account_updated:
      return "account.updated";
    case EventKind::transaction:
      break;
  }
  assert(event.transaction_index >= 0 && static_cast<size_t>(event.transaction_index) < transactions.size());
  return "transaction." + std::string(type_name(transactions[static_cast<size_t>(event.transaction_index)].type));
}

void render_audit_and_events(std::vector<AuditRecord>& audit, std::vector<Event>& events,
                             const std::vector<Transaction>& transactions) {
  // Each row's JSON, rendered for its audit record, by row.
  std::vector<const std::string*> row_json(transactions.size(), nullptr);
  for (auto& record : audit) {
    if (record.transaction_index < 0) continue;
    const auto row = static_cast<size_t>(record.transaction_index);
    assert(row < transactions.size());
    record.detail = encode_transaction(transactions[row]);
    record.transaction_index = -1;
    row_json[row] = &record.detail;
  }
  std::string rendered;
  for (auto& event : events) {
    std::string_view json;
    if (event.kind == EventKind::transaction) {
      const auto row = static_cast<size_t>(event.transaction_index);
      if (row_json[row] == nullptr) {  // a row without an audit record of its own
        rendered = encode_transaction(transactions[row]);
        json = rendered;
      } else {
        json = *row_json[row];
      }
    }
    event.body = encode_event(event, event_type(event, transactions), json);
  }
}

std::vector<StoredEvent> stored_events(const BatchEffects& effects) {
  std::vector<StoredEvent> out;
  out.reserve(effects.events.size());
  for (const auto& event : effects.events) {
    out.push_back(StoredEvent{.id = event.id,
                              .type = event_type(event, effects.transactions),
                              .occurred_at_ms = event.occurred_at_ms,
                              .body = event.body});
  }
  return out;
}

void attach_sequences(BatchEffects& effects) {
  for (size_t i = 0; i < effects.outcomes.size(); ++i) {
    const int index = effects.outcome_transaction[i];
    if (index >= 0 && effects.outcomes[i].transaction) {
      effects.outcomes[i].transaction->sequence = effects.transactions[index].sequence;
    }
  }
}

}  // namespace balanced::core
