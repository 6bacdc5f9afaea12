// The transaction engine: bounded queue -> batching committer -> one durable commit per
// batch -> cache updated -> every request completed.
//
// Natural batching: the committer takes everything that queued while the previous
// commit ran (up to batch_operations_max) as the next batch. At low load a batch is one
// operation and waits for nothing; at high load one commit carries hundreds.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "cache/cache.h"
#include "core/mutex.h"
#include "core/types.h"
#include "engine/clock.h"
#include "storage/store.h"

namespace balanced::engine {

struct EngineStats;

struct EngineOptions {
  size_t queue_depth_max = 100000;
  size_t batch_operations_max = 4096;
  // Transient storage errors are retried with exponential backoff, this many times in
  // all, then the batch's requests are answered 503 unavailable.
  int commit_attempts_max = 6;
  int64_t retry_backoff_ms_initial = 10;
  int64_t retry_backoff_ms_max = 1000;
  // DESIGN.md section 12: an operation not answered this long after it was submitted is
  // answered 503 unavailable (the storage is away; its fate is "unknown" only if a commit
  // attempt had already taken it); 0: no bound. balanced's --storage-deadline-ms.
  int64_t storage_deadline_ms = 0;
  // How often the deadline thread looks at the oldest operations waiting for an answer.
  int64_t deadline_tick_ms = 50;
};

class Engine {
 public:
  // Called exactly once per submitted operation, on a committer thread.
  using Completion = std::function<void(core::Outcome&&)>;
  // Called exactly once per submitted group, with one outcome per operation, in order.
  using GroupCompletion = std::function<void(std::vector<core::Outcome>&&)>;

  // The store, cache, clock and metrics (which may be null) must outlive the engine.
  Engine(storage::Store& store, cache::Cache& cache, Clock& clock, EngineStats* metrics,
         EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Called on the committer thread after each commit that made events, with the id of its
  // last, before its requests are answered (the change feed's long-polls look again).
  // Null: none. Setting it waits for a call under way.
  using CommitListener = std::function<void(int64_t last_event_id)>;
  void set_commit_listener(CommitListener listener) {
    MutexLock lock(listener_mutex_);
    commit_listener_ = std::move(listener);
  }

  // Queues an operation. False, without calling `done`, when the queue is full or the
  // engine is draining: the caller answers 503 overloaded.
  bool submit(core::Operation&& operation, Completion done);
  // Queues operations that must share one commit (a batch request; linked transfers of
  // an atomic batch among them): a committer takes a group whole, never split across
  // commits, even when it alone is larger than batch_operations_max. False, without
  // calling `done`, when the queue cannot take all of them.
  bool submit_group(std::vector<core::Operation> operations, GroupCompletion done);
  // Stops taking operations, commits everything queued, completes it (waiting for the
  // cache writes the completions wait for), and joins the committers. Idempotent.
  void drain();
  // Operations answered 503 by the storage deadline, since the start.
  uint64_t deadline_expired() const { return deadline_expired_.load(std::memory_order_relaxed); }

  // Reads the store (the latest committed state) and refills the cache without waiting
  // for it.
  Result<core::Account> stored_account(std::string_view number);
  // The cached snapshot without waiting on a remote cache: `done` runs inline or on the
  // cache's I/O thread (Cache::get_async), with nullopt on a miss; then read
  // stored_account(number) back on the caller's own thread.
  void cached_account(std::string_view number, cache::Cache::GetDone done) {
    cache_.get_async(number, std::move(done));
  }
  // The cache's answer right away, when it can give one without waiting (an in-process
  // cache); nullopt when the caller must use cached_account().
  std::optional<std::optional<core::Account>> cached_account_at_once(std::string_view number) {
    if (!cache_.answers_at_once()) return std::nullopt;
    return cache_.get(number);
  }
  storage::Store& store() { return store_; }
  // The engine's metrics (null in tests that pass none), for the stages timed outside it.
  EngineStats* stats() { return metrics_; }

 private:
  // The answer of a submission under a storage deadline: whoever claims it first answers,
  // the committer with the outcome or the deadline thread with 503.
  struct Claim {
    std::atomic<bool> answered{false};
    std::function<void()> expire;  // answers 503 unavailable
    bool take() { return !answered.exchange(true, std::memory_order_acq_rel); }
  };
  struct Pending {
    // Built in place in the queue: an operation is moved once on its way in.
    Pending(core::Operation&& operation_in, Completion done_in, size_t group_in,
            std::chrono::steady_clock::time_point enqueued_in, std::shared_ptr<Claim> claim_in)
        : operation(std::move(operation_in)),
          done(std::move(done_in)),
          group(group_in),
          enqueued(enqueued_in),
          claim(std::move(claim_in)) {}
    core::Operation operation;
    Completion done;
    // On the first operation of a group, the size of the group; 0 on the others; 1 for
    // an operation of its own.
    size_t group = 1;
    std::chrono::steady_clock::time_point enqueued;
    // With a storage deadline: the submission's claim (shared by a group's operations).
    std::shared_ptr<Claim> claim;
  };
  Mutex listener_mutex_;
  CommitListener commit_listener_ GUARDED_BY(listener_mutex_);
  void run();
  void commit(std::vector<Pending>& batch);
  Result<core::BatchEffects> apply_with_retries(std::span<const core::Operation> operations,
                                                storage::ApplyTimings& timings);
  // After a retry of a batch whose earlier attempt's fate was unknown: the outcomes that
  // attempt committed (replays stamped `now_ms`) become first answers (201, `committed`).
  void claim_own_commits(core::BatchEffects& effects, std::span<const core::Operation> operations, int64_t now_ms);
  // Answers a committed batch once `published` is in the cache (so that a client that
  // got its answer reads its own write there), without holding the committer meanwhile.
  void publish_then_complete(std::vector<Pending>& batch, std::vector<core::Outcome>&& outcomes,
                             std::vector<core::Account>&& published,
                             std::chrono::steady_clock::time_point applied);
  void complete(std::vector<Pending>& batch, std::vector<core::Outcome>& outcomes);
  // Remembers `claim` for the deadline thread. REQUIRES: mutex_ held.
  void watch(const std::shared_ptr<Claim>& claim, std::chrono::steady_clock::time_point enqueued)
      REQUIRES(mutex_);
  // The deadline thread: answers 503 every submission whose deadline passed unanswered.
  void expire_overdue();

  storage::Store& store_;
  cache::Cache& cache_;
  Clock& clock_;
  EngineStats* metrics_;
  const EngineOptions options_;

  mutable Mutex mutex_;
  std::condition_variable wake_;
  std::deque<Pending> queue_ GUARDED_BY(mutex_);
  bool draining_ GUARDED_BY(mutex_) = false;
  // Committed batches whose answers wait for their cache write; drain() waits for zero.
  size_t publishing_ GUARDED_BY(mutex_) = 0;
  std::condition_variable published_;
  std::vector<std::thread> committers_;  // store.apply_concurrency() of them
  // Submissions under a deadline, oldest first: at most the queue's bound and the batches
  // being committed, plus answered ones behind an older unanswered one.
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::weak_ptr<Claim>>> deadlines_
      GUARDED_BY(mutex_);
  std::condition_variable deadline_wake_;
  bool deadline_stopping_ GUARDED_BY(mutex_) = false;
  std::atomic<uint64_t> deadline_expired_{0};
  std::thread deadline_thread_;
};

}  // namespace balanced::engine
