// The pending overlay: batches durable in the commit log but not yet in the ledger file.
// The committer publishes each batch here once it is durable; readers and the committer
// look here before the file, so nobody ever reads an older state than a committed one;
// the materializer takes chunks of batches in order and, once they are in the file,
// forgets them. Bounded: the committer waits for room (wait_for_room).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/unordered/unordered_flat_map.hpp>

#include "core/ledger.h"
#include "core/mutex.h"

namespace balanced::storage::sqlite {

// One committed, not yet materialized batch.
struct PendingBatch {
  int64_t batch = 0;
  core::BatchEffects effects;  // outcomes left empty
};
using PendingChunk = std::vector<std::shared_ptr<const PendingBatch>>;

class Overlay {
 public:
  // Overlay entries forget() erases per hold of the lock, at most.
  static constexpr size_t erase_slice_max = 256;

  // At most `transactions_max` transactions pending; the table is sized for them once.
  explicit Overlay(size_t transactions_max);

  // The committer's. Waits while the overlay is full; false after `wait_max`.
  bool wait_for_room(std::chrono::milliseconds wait_max);
  // A durable batch: its accounts and transactions become visible to every reader.
  void publish(std::shared_ptr<const PendingBatch> batch);
  // The pending state of the accounts `numbers` points at into `state`; the numbers not
  // pending are appended to `missing`.
  void load_accounts(std::span<const std::string* const> numbers, core::LedgerState& state,
                     std::vector<const std::string*>& missing);
  void load_transactions(std::span<const std::string> ids, core::LedgerState& state,
                         std::vector<const std::string*>& missing);
  void load_reference_owners(std::span<const std::string> keys, core::LedgerState& state,
                             std::vector<const std::string*>& missing);

  // Readers'.
  std::optional<core::Account> account(std::string_view number);
  // Gives a row read from the ledger file its pending state, if a newer one is pending.
  void patch(core::Transaction& row);
  std::optional<core::Transaction> transaction(std::string_view id);
  // The newest committed transaction of `number` created at or before `at_ms`, if one is
  // pending.
  std::optional<core::Transaction> latest_at(std::string_view number, int64_t at_ms);
  // The committed transactions of `number` with sequence < before, appended to `out`
  // (each with its newest state).
  void history(std::string_view number, int64_t before, std::vector<core::Transaction>& out);

  // The pending events with id > after, oldest first, up to `limit` in `out`; returns
  // the first pending event's id (0: none pending). Every event below it is in the
  // ledger file.
  int64_t events_after(int64_t after, size_t limit, std::vector<core::StoredEvent>& out);
  // The pending batches (each a batch number above what the file held when it was
  // published), oldest first.
  std::vector<std::shared_ptr<const PendingBatch>> pending();

  // The materializer's. Waits for a batch, then up to `grow_for` (cut short when the
  // overlay is half full or on stop()) for more; returns the oldest batches, at most
  // `transactions_max` transactions (at least one batch). Empty: stopped and drained.
  PendingChunk next_chunk(std::chrono::milliseconds grow_for, size_t transactions_max);
  // The chunk is in the ledger file: its entries go, a slice per hold of the lock (this
  // niced thread must never hold a lock the committer and readers take for the
  // milliseconds erasing 20,000 entries takes).
  void forget(const PendingChunk& chunk);
  void set_error(std::string error);
  std::string error();
  int64_t materialized_batch();
  void set_materialized_batch(int64_t batch);

  // Wakes next_chunk() for the last time: it returns what is left, then nothing.
  void stop();

 private:
  // The row `id` in its newest pending state, or null.
  const core::Transaction* find(std::string_view id) REQUIRES(mutex_);
  void patch_locked(core::Transaction& row) REQUIRES(mutex_);

  const size_t transactions_max_;
  Mutex mutex_;
  std::condition_variable changed_;
  core::FlatStringMap<core::Account> accounts_ GUARDED_BY(mutex_);
  // Keys and values point into batches_, which outlive their entries here. Open
  // addressing, sized at construction: the committer adds every transfer and the
  // materializer erases it, with no allocation and no rehash for either.
  boost::unordered_flat_map<std::string_view, const core::Transaction*> transactions_
      GUARDED_BY(mutex_);
  // The newest pending state of earlier rows (a hold ended, a transfer refunded), pointing
  // into batches_ like transactions_. Keyed by copies: a row updated by a later batch
  // keeps its entry while the earlier batch, whose id a view would point into, is
  // forgotten. Few entries, so a node map.
  struct IdHash {
    using is_transparent = void;
    size_t operator()(std::string_view id) const { return std::hash<std::string_view>{}(id); }
  };
  std::unordered_map<std::string, const core::Transaction*, IdHash, std::equal_to<>> updated_ GUARDED_BY(mutex_);
  // References taken by pending batches (--unique-references): key -> transaction id.
  std::unordered_map<std::string, std::string> reference_owners_ GUARDED_BY(mutex_);
  std::deque<std::shared_ptr<const PendingBatch>> batches_ GUARDED_BY(mutex_);
  size_t transaction_count_ GUARDED_BY(mutex_) = 0;
  int64_t materialized_batch_ GUARDED_BY(mutex_) = 0;
  std::string error_ GUARDED_BY(mutex_);
  bool stopping_ GUARDED_BY(mutex_) = false;
};

}  // namespace balanced::storage::sqlite
