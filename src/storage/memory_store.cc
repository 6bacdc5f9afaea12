#include "storage/memory_store.h"

#include <algorithm>

#include "storage/batch.h"

#include <chrono>
#include <thread>

namespace balanced::storage {

// REQUIRES: MemoryStore::mutex_ held for the whole life of the object.
class MemoryStore::Transaction final : public BatchTransaction {
 public:
  explicit Transaction(MemoryStore& store) : store_(store) {}

  Status load_accounts(std::span<const std::string> numbers, core::LedgerState& state) override {
    for (const auto& number : numbers) {
      if (auto it = store_.accounts_.find(number); it != store_.accounts_.end()) {
        state.accounts.emplace(number, it->second);
      }
    }
    return {};
  }

  Status load_transactions(std::span<const std::string> ids, core::LedgerState& state) override {
    for (const auto& id : ids) {
      if (auto it = store_.by_id_.find(id); it != store_.by_id_.end()) {
        state.existing.insert_or_assign(id, store_.transactions_[it->second]);
      }
    }
    return {};
  }

  Status load_reference_owners(std::span<const std::string> keys, core::LedgerState& state) override {
    for (const auto& key : keys) {
      if (auto it = store_.reference_owners_.find(key); it != store_.reference_owners_.end()) {
        state.reference_owners.emplace(key, it->second);
      }
    }
    return {};
  }

  Status load_velocity(std::span<const std::string> sources, int64_t now_ms, core::LedgerState& state) override {
    for (const auto& source : sources) {
      core::Velocity& velocity = state.velocity[source];
      for (const auto& t : store_.transactions_) {
        if (t.source == source && t.status == core::TransactionStatus::committed && core::counts_as_debit(t.type)) {
          core::count_debit(velocity, t.created_at_ms, t.amount, now_ms);
        }
      }
    }
    return {};
  }

  Status write(core::BatchEffects& effects) override {
    for (const auto& claim : effects.reference_claims) {
      if (!store_.reference_owners_.emplace(claim.key, claim.transaction_id).second) {
        return Status(Code::internal, "reference " + claim.key + " claimed twice");
      }
    }
    for (const auto& account : effects.created) store_.accounts_[account.number] = account;
    for (const auto& account : effects.updated) store_.accounts_[account.number] = account;
    for (auto& transaction : effects.transactions) {
      transaction.sequence = static_cast<int64_t>(store_.transactions_.size()) + 1;
      store_.by_id_.emplace(transaction.id, store_.transactions_.size());
      store_.transactions_.push_back(transaction);
      core::add_daily_totals(transaction, store_.daily_totals_);
      core::add_volumes(transaction, store_.volumes_);
    }
    for (const auto& updated : effects.transaction_updates) {
      store_.transactions_.at(store_.by_id_.at(updated.id)) = updated;
    }
    auto event_id = store_.first_event_id_ + static_cast<int64_t>(store_.events_.size()) - 1;
    for (auto& event : effects.events) event.id = ++event_id;
    if (!effects.events.empty()) effects.last_event_id = event_id;
    core::render_audit_and_events(effects.audit, effects.events, effects.transactions);
    for (auto& event : core::stored_events(effects)) store_.events_.push_back(std::move(event));
    core::seal_audit(effects.audit, effects.transactions,
                     store_.audit_.empty() ? std::string() : store_.audit_.back().hash);
    for (auto& record : effects.audit) {
      record.log_id = static_cast<int64_t>(store_.audit_.size()) + 1;
      store_.audit_.push_back(record);
    }
    return {};
  }

 private:
  MemoryStore& store_;
};

Result<core::BatchEffects> MemoryStore::apply(std::span<const core::Operation> operations,
                                              int64_t now_ms, ApplyTimings& /*timings*/) {
  applies_started_.fetch_add(1);
  struct Ended {
    std::atomic<int>& count;
    ~Ended() { count.fetch_add(1); }
  } ended{applies_ended_};
  if (const int delay_ms = apply_delay_ms_.load(); delay_ms > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
  }
  if (down_) return Error{Code::unavailable, "memory store is down (injected)"};
  if (failing_applies_.load() > 0) {
    failing_applies_.fetch_sub(1);
    return Error{Code::unavailable, "memory store apply failed (injected)"};
  }
  std::lock_guard lock(mutex_);
  Transaction transaction(*this);
  auto effects = run_batch(transaction, operations, now_ms);
  if (effects.ok() && losing_answers_.load() > 0) {
    losing_answers_.fetch_sub(1);
    return Error{Code::unavailable, "memory store lost the COMMIT's answer (injected)"};
  }
  return effects;
}

Result<core::Account> MemoryStore::account(std::string_view number) {
  if (down_) return Error{Code::unavailable, "memory store is down (injected)"};
  std::lock_guard lock(mutex_);
  auto it = accounts_.find(number);
  if (it == accounts_.end()) {
    return Error{Code::account_not_found, "account " + std::string(number) + " does not exist"};
  }
  return it->second;
}

Result<core::Transaction> MemoryStore::transaction(std::string_view id) {
  if (down_) return Error{Code::unavailable, "memory store is down (injected)"};
  std::lock_guard lock(mutex_);
  auto it = by_id_.find(std::string(id));
  if (it == by_id_.end()) {
    return Error{Code::not_found, "transaction " + std::string(id) + " does not exist"};
  }
  return transactions_[it->second];
}

Result<HistoryPage> MemoryStore::history(std::string_view number,
                                         std::optional<int64_t> before_sequence, size_t limit) {
  if (down_) return Error{Code::unavailable, "memory store is down (injected)"};
  std::lock_guard lock(mutex_);
  if (!accounts_.contains(number)) {
    return Error{Code::account_not_found, "account " + std::string(number) + " does not exist"};
  }
  HistoryPage page;
  int64_t index = before_sequence ? std::min<int64_t>(*before_sequence - 1,
                                                      static_cast<int64_t>(transactions_.size()))
                                  : static_cast<int64_t>(transactions_.size());
  for (--index; index >= 0; --index) {
    const auto& t = transactions_[static_cast<size_t>(index)];
    if (t.status != core::TransactionStatus::committed) continue;
    if (t.source != number && t.destination != number) continue;
    if (page.transactions.size() == limit) {
      page.next_cursor = page.transactions.back().sequence;
      break;
    }
    page.transactions.push_back(t);
  }
  return page;
}

// The twin walks the rows back from the newest: tests hold few.
Result<BalanceAt> MemoryStore::balance_at(std::string_view number, int64_t at_ms) {
  if (down_) return Error{Code::unavailable, "memory store is down (injected)"};
  std::lock_guard lock(mutex_);
  for (auto t = transactions_.rbegin(); t != transactions_.rend(); ++t) {
    if (t->status != core::TransactionStatus::committed || t->created_at_ms > at_ms) continue;
    if (t->source != number && t->destination != number) continue;
    const bool source = t->source == number;
    BalanceAt at{.balance = source ? t->source_balance_after : t->destination_balance_after,
                 .version = source ? t->source_version_after : t->destination_version_after};
    if (at.version == 0) {
      at.version = std::count_if(t, transactions_.rend(), [&](const core::Transaction& earlier) {
        return earlier.status == core::TransactionStatus::committed &&
               (earlier.source == number || earlier.destination == number);
      });
    }
    return at;
  }
  return BalanceAt{};
}

Result<HistoryPage> MemoryStore::holds(std::string_view number, std::optional<int64_t> before_sequence,
                                       size_t limit) {
  if (down_) return Error{Code::unavailable, "memory store is down (injected)"};
  return newest_first(before_sequence, limit, [number](const core::Transaction& t) {
    return t.type == core::TransactionType::hold && t.status == core::TransactionStatus::committed &&
           (t.source == number || t.destination == number);
  });
}

HistoryPage MemoryStore::newest_first(std::optional<int64_t> before_sequence, size_t limit,
                                      const std::function<bool(const core::Transaction&)>& wanted) {
  std::lock_guard lock(mutex_);
  HistoryPage page;
  for (auto t = transactions_.rbegin(); t != transactions_.rend(); ++t) {
    if ((before_sequence && t->sequence >= *before_sequence) || !wanted(*t)) continue;
    if (page.transactions.size() == limit) {
      page.next_cursor = page.transactions.back().sequence;
      break;
    }
    page.transactions.push_back(*t);
  }
  return page;
}

Result<HistoryPage> MemoryStore::review_holds(std::string_view rule, std::optional<int64_t> before_sequence,
                                              size_t limit) {
  if (down_) return Error{Code::unavailable, "memory store is down (injected)"};
  return newest_first(before_sequence, limit, [rule](const core::Transaction& t) {
    return t.hold_status == core::HoldStatus::pending && t.risk_decision == "review" &&
           (rule.empty() || t.risk_rule == rule);
  });
}

Result<std::vector<std::string>> MemoryStore::overdue_holds(int64_t now_ms, size_t limit) {
  if (down_) return Error{Code::unavailable, "memory store is down (injected)"};
  std::lock_guard lock(mutex_);
  std::vector<const core::Transaction*> overdue;
  for (const auto& t : transactions_) {
    if (t.hold_status == core::HoldStatus::pending && t.expires_at_ms <= now_ms) overdue.push_back(&t);
  }
  std::stable_sort(overdue.begin(), overdue.end(),
                   [](const auto* a, const auto* b) { return a->expires_at_ms < b->expires_at_ms; });
  std::vector<std::string> ids;
  for (size_t i = 0; i < overdue.size() && i < limit; ++i) ids.push_back(overdue[i]->id);
  return ids;
}

Status MemoryStore::ping() {
  if (down_) return Status(Code::unavailable, "memory store is down (injected)");
  return {};
}

Result<EventPage> MemoryStore::events_after(int64_t after, size_t limit) {
  if (down_) return Error{Code::unavailable, "memory store is down (injected)"};
  std::lock_guard lock(mutex_);
  EventPage page;
  page.oldest = events_.empty() ? 0 : first_event_id_;
  const auto from = static_cast<size_t>(
      std::clamp<int64_t>(after + 1 - first_event_id_, 0, static_cast<int64_t>(events_.size())));
  const size_t to = std::min(events_.size(), from + limit);
  page.events.assign(events_.begin() + static_cast<std::ptrdiff_t>(from), events_.begin() + static_cast<std::ptrdiff_t>(to));
  return page;
}

Result<int64_t> MemoryStore::prune_events(int64_t before_ms, size_t limit, int64_t through_max) {
  if (down_) return Error{Code::unavailable, "memory store is down (injected)"};
  std::lock_guard lock(mutex_);
  int64_t pruned = 0;
  while (events_.size() > 1 && static_cast<size_t>(pruned) < limit && events_.front().occurred_at_ms < before_ms &&
         first_event_id_ <= through_max) {
    events_.pop_front();
    ++first_event_id_;
    ++pruned;
  }
  return pruned;
}

Result<std::map<core::TransactionType, core::DailyTotal>> MemoryStore::flows(std::string_view number, int64_t from_day,
                                                                             int64_t to_day) {
  if (down_) return Error{Code::unavailable, "memory store is down (injected)"};
  std::lock_guard lock(mutex_);
  std::map<core::TransactionType, core::DailyTotal> by_type;
  const std::string account(number);
  for (auto it = daily_totals_.lower_bound(core::DailyKey{account, from_day, core::TransactionType::transfer});
       it != daily_totals_.end() && it->first.account == account && it->first.day <= to_day; ++it) {
    core::add_daily_total(by_type[it->first.type], it->second);
  }
  return by_type;
}

Result<core::Volumes> MemoryStore::volumes(std::string_view currency, int64_t from_hour, int64_t to_hour) {
  if (down_) return Error{Code::unavailable, "memory store is down (injected)"};
  std::lock_guard lock(mutex_);
  core::Volumes out;
  const std::string wanted(currency);
  for (auto it = volumes_.lower_bound(core::VolumeKey{wanted, from_hour, core::TransactionType::transfer});
       it != volumes_.end() && it->first.currency == wanted && it->first.hour <= to_hour; ++it) {
    out.emplace(it->first, it->second);
  }
  return out;
}

Result<int64_t> MemoryStore::relay_position(std::string_view relay) {
  if (down_) return Error{Code::unavailable, "memory store is down (injected)"};
  std::lock_guard lock(mutex_);
  auto it = relay_positions_.find(std::string(relay));
  return it == relay_positions_.end() ? int64_t{0} : it->second;
}

Status MemoryStore::confirm_relay(std::string_view relay, int64_t position) {
  if (down_) return Status(Code::unavailable, "memory store is down (injected)");
  std::lock_guard lock(mutex_);
  int64_t& kept = relay_positions_[std::string(relay)];
  kept = std::max(kept, position);
  return {};
}

Status MemoryStore::scan(ScanVisitor& visitor) {
  std::lock_guard lock(mutex_);
  for (const auto& [number, account] : accounts_) visitor.account(account);
  for (const auto& [key, id] : reference_owners_) {
    visitor.reference_claim(core::ReferenceClaim{.key = key, .transaction_id = id});
  }
  for (const auto& t : transactions_) {
    if (t.status == core::TransactionStatus::committed) visitor.transaction(t);
  }
  for (const auto& [key, total] : daily_totals_) visitor.daily_total(key, total);
  for (const auto& [key, volume] : volumes_) visitor.volume(key, volume);
  if (events_.empty()) {
    visitor.event_span(0, 0, 0, std::nullopt);
  } else {
    visitor.event_span(events_.front().id, events_.back().id, static_cast<int64_t>(events_.size()), std::nullopt);
  }
  for (const auto& record : audit_) visitor.audit(record);
  return {};
}

}  // namespace balanced::storage
