#include "storage/sqlite/overlay.h"

#include "core/json_codec.h"

#include <cassert>

namespace balanced::storage::sqlite {

Overlay::Overlay(size_t transactions_max) : transactions_max_(transactions_max) {
  MutexLock lock(mutex_);
  transactions_.reserve(transactions_max);
}

bool Overlay::wait_for_room(std::chrono::milliseconds wait_max) {
  MutexLock lock(mutex_);
  return lock.wait_for(changed_, wait_max,
                       [&]() REQUIRES(mutex_) { return transaction_count_ < transactions_max_; });
}

void Overlay::publish(std::shared_ptr<const PendingBatch> batch) {
  {
    MutexLock lock(mutex_);
    for (const auto& a : batch->effects.created) accounts_[a.number] = a;
    for (const auto& a : batch->effects.updated) accounts_[a.number] = a;
    for (const auto& t : batch->effects.transactions) transactions_[t.id] = &t;
    for (const auto& t : batch->effects.transaction_updates) updated_.insert_or_assign(t.id, &t);
    for (const auto& claim : batch->effects.reference_claims) reference_owners_.emplace(claim.key, claim.transaction_id);
    transaction_count_ += batch->effects.transactions.size();
    batches_.push_back(std::move(batch));
  }
  changed_.notify_all();
}

void Overlay::load_accounts(std::span<const std::string* const> numbers, core::LedgerState& state,
                            std::vector<const std::string*>& missing) {
  MutexLock lock(mutex_);
  for (const std::string* number : numbers) {
    if (auto it = accounts_.find(*number); it != accounts_.end()) {
      state.accounts.emplace(*number, it->second);
    } else {
      missing.push_back(number);
    }
  }
}

void Overlay::load_transactions(std::span<const std::string> ids, core::LedgerState& state,
                                std::vector<const std::string*>& missing) {
  MutexLock lock(mutex_);
  for (const auto& id : ids) {
    if (const core::Transaction* t = find(id)) {
      state.existing.insert_or_assign(id, *t);
    } else {
      missing.push_back(&id);
    }
  }
}

void Overlay::load_reference_owners(std::span<const std::string> keys, core::LedgerState& state,
                                    std::vector<const std::string*>& missing) {
  MutexLock lock(mutex_);
  for (const auto& key : keys) {
    if (auto it = reference_owners_.find(key); it != reference_owners_.end()) {
      state.reference_owners.emplace(key, it->second);
    } else {
      missing.push_back(&key);
    }
  }
}

const core::Transaction* Overlay::find(std::string_view id) {
  if (auto it = updated_.find(id); it != updated_.end()) return it->second;
  if (auto it = transactions_.find(id); it != transactions_.end()) return it->second;
  return nullptr;
}

void Overlay::patch(core::Transaction& row) {
  MutexLock lock(mutex_);
  patch_locked(row);
}

void Overlay::patch_locked(core::Transaction& row) {
  if (auto it = updated_.find(row.id); it != updated_.end()) row = *it->second;
}

std::optional<core::Account> Overlay::account(std::string_view number) {
  MutexLock lock(mutex_);
  if (auto it = accounts_.find(number); it != accounts_.end()) return it->second;
  return std::nullopt;
}

std::optional<core::Transaction> Overlay::transaction(std::string_view id) {
  MutexLock lock(mutex_);
  if (const core::Transaction* t = find(id)) return *t;
  return std::nullopt;
}

std::vector<std::shared_ptr<const PendingBatch>> Overlay::pending() {
  MutexLock lock(mutex_);
  return {batches_.begin(), batches_.end()};
}

void Overlay::history(std::string_view number, int64_t before, std::vector<core::Transaction>& out) {
  MutexLock lock(mutex_);
  for (const auto& batch : batches_) {
    for (const auto& t : batch->effects.transactions) {
      if (t.sequence < before && t.status == core::TransactionStatus::committed &&
          (t.source == number || t.destination == number)) {
        out.push_back(t);
        patch_locked(out.back());
      }
    }
  }
}

std::optional<core::Transaction> Overlay::latest_at(std::string_view number, int64_t at_ms) {
  MutexLock lock(mutex_);
  for (auto batch = batches_.rbegin(); batch != batches_.rend(); ++batch) {
    const auto& transactions = (*batch)->effects.transactions;
    for (auto t = transactions.rbegin(); t != transactions.rend(); ++t) {
      if (t->status == core::TransactionStatus::committed && t->created_at_ms <= at_ms &&
          (t->source == number || t->destination == number)) {
        return *t;
      }
    }
  }
  return std::nullopt;
}

int64_t Overlay::events_after(int64_t after, size_t limit, std::vector<core::StoredEvent>& out) {
  MutexLock lock(mutex_);
  int64_t first_pending = 0;
  for (const auto& batch : batches_) {
    const auto& effects = batch->effects;
    for (const auto& event : effects.events) {
      if (first_pending == 0) first_pending = event.id;
      if (event.id <= after || out.size() >= limit) continue;
      // Rendered here: the materializer renders them again, with the audit details.
      std::string type = core::event_type(event, effects.transactions);
      std::string body = core::encode_event(
          event, type,
          event.kind == core::EventKind::transaction
              ? core::encode_transaction(effects.transactions[static_cast<size_t>(event.transaction_index)])
              : std::string());
      out.push_back(core::StoredEvent{.id = event.id,
                                      .type = std::move(type),
                                      .occurred_at_ms = event.occurred_at_ms,
                                      .body = std::move(body)});
    }
    if (out.size() >= limit) break;
  }
  return first_pending;
}

PendingChunk Overlay::next_chunk(std::chrono::milliseconds grow_for, size_t transactions_max) {
  PendingChunk chunk;
  MutexLock lock(mutex_);
  lock.wait(changed_, [&]() REQUIRES(mutex_) { return !batches_.empty() || stopping_; });
  if (batches_.empty()) return chunk;  // stopping, and everything is materialized
  // Let the chunk grow, unless stopping or the overlay is filling up.
  lock.wait_for(changed_, grow_for, [&]() REQUIRES(mutex_) {
    return stopping_ || transaction_count_ * 2 >= transactions_max_;
  });
  size_t transactions = 0;
  for (const auto& batch : batches_) {
    if (!chunk.empty() && transactions + batch->effects.transactions.size() > transactions_max) break;
    transactions += batch->effects.transactions.size();
    chunk.push_back(batch);
  }
  return chunk;
}

void Overlay::forget(const PendingChunk& chunk) {
  for (const auto& batch : chunk) {
    const auto& transactions = batch->effects.transactions;
    for (size_t from = 0; from < transactions.size(); from += erase_slice_max) {
      const size_t to = std::min(transactions.size(), from + erase_slice_max);
      MutexLock slice(mutex_);
      for (size_t i = from; i < to; ++i) transactions_.erase(transactions[i].id);
      transaction_count_ -= to - from;
    }
  }
  for (const auto& batch : chunk) {
    MutexLock lock(mutex_);  // one batch per hold, for the same reason
    error_.clear();
    assert(batches_.front() == batch);
    auto forget_account = [&](const core::Account& a) REQUIRES(mutex_) {
      auto it = accounts_.find(a.number);
      if (it != accounts_.end() && it->second.version <= a.version) accounts_.erase(it);
    };
    for (const auto& a : batch->effects.created) forget_account(a);
    for (const auto& a : batch->effects.updated) forget_account(a);
    for (const auto& t : batch->effects.transaction_updates) {
      // A later batch's newer state stays.
      if (auto it = updated_.find(t.id); it != updated_.end() && it->second == &t) updated_.erase(it);
    }
    for (const auto& claim : batch->effects.reference_claims) reference_owners_.erase(claim.key);
    batches_.pop_front();
    materialized_batch_ = batch->batch;
  }
  changed_.notify_all();
}

void Overlay::set_error(std::string error) {
  MutexLock lock(mutex_);
  error_ = std::move(error);
}

std::string Overlay::error() {
  MutexLock lock(mutex_);
  return error_;
}

int64_t Overlay::materialized_batch() {
  MutexLock lock(mutex_);
  return materialized_batch_;
}

void Overlay::set_materialized_batch(int64_t batch) {
  MutexLock lock(mutex_);
  materialized_batch_ = batch;
}

void Overlay::stop() {
  {
    MutexLock lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
}

}  // namespace balanced::storage::sqlite
