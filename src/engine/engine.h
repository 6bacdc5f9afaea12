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

  // Queues an operation. False, without calling `done`, when the queue is full or the
  // engine is draining: the caller answers 503 overloaded.
  bool submit(core::Operation operation, Completion done);
  // Queues operations that must share one commit (a batch request; linked transfers of
  // an atomic batch among them): a committer takes a group whole, never split across
  // commits, even when it alone is larger than batch_operations_max. False, without
  // calling `done`, when the queue cannot take all of them.
  bool submit_group(std::vector<core::Operation> operations, GroupCompletion done);
  // Stops taking operations, commits everything queued, completes it (waiting for the
  // cache writes the completions wait for), and joins the committers. Idempotent.
  void drain();

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
  struct Pending {
    core::Operation operation;
    Completion done;
    // On the first operation of a group, the size of the group; 0 on the others; 1 for
    // an operation of its own.
    size_t group = 1;
    std::chrono::steady_clock::time_point enqueued;
  };
  void run();
  void commit(std::vector<Pending>& batch);
  Result<core::BatchEffects> apply_with_retries(std::span<const core::Operation> operations,
                                                storage::ApplyTimings& timings);
  // Answers a committed batch once `published` is in the cache (so that a client that
  // got its answer reads its own write there), without holding the committer meanwhile.
  void publish_then_complete(std::vector<Pending>& batch, std::vector<core::Outcome>&& outcomes,
                             std::vector<core::Account>&& published,
                             std::chrono::steady_clock::time_point applied);
  void complete(std::vector<Pending>& batch, std::vector<core::Outcome>& outcomes);

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
};

}  // namespace balanced::engine
