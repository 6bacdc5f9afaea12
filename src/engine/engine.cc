#include "engine/engine.h"

#include <algorithm>
#include <cassert>

#include "observe/log.h"
#include "engine/stats.h"

namespace balanced::engine {

Engine::Engine(storage::Store& store, cache::Cache& cache, Clock& clock,
               EngineStats* metrics, EngineOptions options)
    : store_(store), cache_(cache), clock_(clock), metrics_(metrics), options_(options) {
  assert(options_.queue_depth_max > 0);
  assert(options_.batch_operations_max > 0);
  assert(options_.commit_attempts_max > 0);
  // One committer per batch the store can apply at once (several on MySQL, which locks
  // rows; one on SQLite, the single writer). They share the queue.
  const size_t committers = std::max<size_t>(1, store_.apply_concurrency());
  for (size_t i = 0; i < committers; ++i) committers_.emplace_back([this, i] {
      observe::name_this_thread("commit-" + std::to_string(i));
      run();
    });
  if (options_.storage_deadline_ms > 0) {
    deadline_thread_ = std::thread([this] {
      observe::name_this_thread("deadline");
      expire_overdue();
    });
  }
}

Engine::~Engine() {
  drain();
  {
    MutexLock lock(mutex_);
    deadline_stopping_ = true;
  }
  deadline_wake_.notify_all();
  if (deadline_thread_.joinable()) deadline_thread_.join();
}

void Engine::watch(const std::shared_ptr<Claim>& claim, std::chrono::steady_clock::time_point enqueued) {
  deadlines_.emplace_back(enqueued + std::chrono::milliseconds(options_.storage_deadline_ms), claim);
}

void Engine::expire_overdue() {
  std::vector<std::shared_ptr<Claim>> overdue;
  MutexLock lock(mutex_);
  while (!deadline_stopping_) {
    lock.wait_for(deadline_wake_, std::chrono::milliseconds(options_.deadline_tick_ms),
                  [&]() REQUIRES(mutex_) { return deadline_stopping_; });
    const auto now = std::chrono::steady_clock::now();
    // Answered submissions leave from the front; the overdue ones are taken to answer.
    while (!deadlines_.empty()) {
      auto& [deadline, weak] = deadlines_.front();
      std::shared_ptr<Claim> claim = weak.lock();
      if (claim != nullptr && !claim->answered.load(std::memory_order_acquire)) {
        if (deadline > now) break;
        overdue.push_back(std::move(claim));
      }
      deadlines_.pop_front();
    }
    if (overdue.empty()) continue;
    lock.unlock();
    for (auto& claim : overdue) {
      if (!claim->take()) continue;  // answered meanwhile
      deadline_expired_.fetch_add(1, std::memory_order_relaxed);
      if (metrics_) metrics_->deadline_expired.Increment();
      claim->expire();
    }
    overdue.clear();
    lock.relock();
  }
}

bool Engine::submit(core::Operation&& operation, Completion done) {
  const auto enqueued = std::chrono::steady_clock::now();
  size_t depth = 0;
  {
    MutexLock lock(mutex_);
    if (draining_ || queue_.size() >= options_.queue_depth_max) {
      if (metrics_) metrics_->overloaded.Increment();
      return false;
    }
    if (options_.storage_deadline_ms > 0) {
      auto claim = std::make_shared<Claim>();
      auto shared_done = std::make_shared<Completion>(std::move(done));
      claim->expire = [shared_done, deadline_ms = options_.storage_deadline_ms] {
        (*shared_done)(core::Outcome{.code = Code::unavailable,
                                     .detail = "storage did not answer within " + std::to_string(deadline_ms) +
                                               " ms; the operation's fate is unknown: send it again with the same id"});
      };
      done = [claim, shared_done](core::Outcome&& outcome) {
        if (claim->take()) (*shared_done)(std::move(outcome));
      };
      watch(claim, enqueued);
      queue_.emplace_back(std::move(operation), std::move(done), 1, enqueued, std::move(claim));
    } else {
      queue_.emplace_back(std::move(operation), std::move(done), 1, enqueued, nullptr);
    }
    depth = queue_.size();
  }
  // Only the first waiter needs to wake the committer; later ones join its next batch.
  if (depth == 1) wake_.notify_one();
  return true;
}

bool Engine::submit_group(std::vector<core::Operation> operations, GroupCompletion done) {
  if (operations.empty()) return false;
  // The outcomes arrive one by one, all on the committer thread of the one commit.
  struct Gathered {
    std::vector<core::Outcome> outcomes;
    size_t arrived = 0;
    GroupCompletion done;
  };
  auto gathered = std::make_shared<Gathered>();
  gathered->outcomes.resize(operations.size());
  gathered->done = std::move(done);
  const size_t count = operations.size();
  const auto enqueued = std::chrono::steady_clock::now();
  size_t depth = 0;
  {
    MutexLock lock(mutex_);
    if (draining_ || queue_.size() + count > options_.queue_depth_max) {
      if (metrics_) metrics_->overloaded.Increment(static_cast<double>(count));
      return false;
    }
    std::shared_ptr<Claim> claim;
    if (options_.storage_deadline_ms > 0) {
      claim = std::make_shared<Claim>();
      claim->expire = [gathered, count, deadline_ms = options_.storage_deadline_ms] {
        std::vector<core::Outcome> unavailable(
            count, core::Outcome{.code = Code::unavailable,
                                 .detail = "storage did not answer within " + std::to_string(deadline_ms) + " ms"});
        gathered->done(std::move(unavailable));
      };
      watch(claim, enqueued);
    }
    for (size_t i = 0; i < count; ++i) {
      queue_.emplace_back(
          std::move(operations[i]),
          [gathered, i, claim](core::Outcome&& outcome) {
            gathered->outcomes[i] = std::move(outcome);
            if (++gathered->arrived == gathered->outcomes.size() && (claim == nullptr || claim->take())) {
              gathered->done(std::move(gathered->outcomes));
            }
          },
          i == 0 ? count : 0, enqueued, claim);
    }
    depth = queue_.size();
  }
  if (depth == count) wake_.notify_one();
  return true;
}

void Engine::drain() {
  {
    MutexLock lock(mutex_);
    draining_ = true;
  }
  wake_.notify_all();
  for (auto& committer : committers_) {
    if (committer.joinable()) committer.join();
  }
  MutexLock lock(mutex_);
  lock.wait(published_, [&]() REQUIRES(mutex_) { return publishing_ == 0; });
}

void Engine::run() {
  std::vector<Pending> batch;
  batch.reserve(options_.batch_operations_max);
  for (;;) {
    {
      MutexLock lock(mutex_);
      lock.wait(wake_, [&]() REQUIRES(mutex_) { return !queue_.empty() || draining_; });
      if (queue_.empty()) return;  // draining and nothing left
      // Whole groups only; a group larger than the bound goes alone.
      while (!queue_.empty()) {
        const size_t group = queue_.front().group;
        assert(group >= 1 && group <= queue_.size());
        // Answered 503 by its deadline while it waited here: never applied, so dropped.
        const auto& claim = queue_.front().claim;
        if (claim != nullptr && claim->answered.load(std::memory_order_acquire)) {
          for (size_t i = 0; i < group; ++i) queue_.pop_front();
          continue;
        }
        if (!batch.empty() && batch.size() + group > options_.batch_operations_max) break;
        for (size_t i = 0; i < group; ++i) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        if (batch.size() >= options_.batch_operations_max) break;
      }
      if (batch.empty()) continue;
      if (metrics_) metrics_->queue_depth.Set(static_cast<double>(queue_.size()));
      // Only the first waiter wakes a committer; when this one leaves work behind (a
      // batch bound reached), it wakes the next idle one so that all can commit at once.
      if (!queue_.empty()) wake_.notify_one();
    }
    if (metrics_) {
      metrics_->stage(Stage::queue_wait).Observe(storage::seconds_since(batch.front().enqueued));
    }
    commit(batch);
    batch.clear();
  }
}

Result<core::BatchEffects> Engine::apply_with_retries(
    std::span<const core::Operation> operations, storage::ApplyTimings& timings) {
  int64_t backoff_ms = options_.retry_backoff_ms_initial;
  // One time for every attempt. After a failed attempt the batch's fate is unknown (its
  // COMMIT may have landed and only the answer been lost); a retry then finds the
  // operations that attempt committed as replays, stamped with this very time, and tells
  // them from an earlier request's: they are answered as the first attempt would have been.
  const int64_t now_ms = clock_.now_ms();
  bool in_doubt = false;
  for (int attempt = 1;; ++attempt) {
    auto effects = store_.apply(operations, now_ms, timings);
    if (effects.ok() && in_doubt) claim_own_commits(effects.value(), operations, now_ms);
    if (effects.ok() || effects.error().code != Code::unavailable ||
        attempt >= options_.commit_attempts_max) {
      return effects;
    }
    in_doubt = true;
    if (metrics_) metrics_->commit_retries.Increment();
    observe::log(observe::LogLevel::warn, "commit failed, retrying",
                 {{"error.message", effects.error().detail}, {"attempt", std::to_string(attempt)}});
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
    backoff_ms = std::min(backoff_ms * 2, options_.retry_backoff_ms_max);
  }
}

void Engine::claim_own_commits(core::BatchEffects& effects, std::span<const core::Operation> operations,
                               int64_t now_ms) {
  for (size_t i = 0; i < effects.outcomes.size() && i < operations.size(); ++i) {
    core::Outcome& outcome = effects.outcomes[i];
    if (outcome.replayed && outcome.transaction && outcome.transaction->created_at_ms == now_ms) {
      outcome.replayed = false;
      if (metrics_) metrics_->commits_found_on_retry.Increment();
      continue;
    }
    // An account this very attempt's time created, as this operation asks: the lost
    // COMMIT's, answered as created (an identical creation in the same millisecond by
    // another request is answered so too, which is harmless: it is the same account).
    const auto* create = std::get_if<core::CreateAccount>(&operations[i]);
    if (create == nullptr || outcome.code != Code::account_exists || !outcome.account) continue;
    const core::Account& account = *outcome.account;
    const bool deposit_matches =
        create->initial_balance == 0 ? !outcome.transaction
                                     : outcome.transaction && outcome.transaction->amount == create->initial_balance &&
                                           outcome.transaction->created_at_ms == now_ms;
    if (account.created_at_ms == now_ms && account.currency == create->currency &&
        account.overdraft_limit == create->overdraft_limit && account.type == create->type &&
        account.metadata == create->metadata && deposit_matches) {
      outcome.code = Code::ok;
      outcome.detail.clear();
      if (metrics_) metrics_->commits_found_on_retry.Increment();
    }
  }
}

void Engine::commit(std::vector<Pending>& batch) {
  const auto started = std::chrono::steady_clock::now();
  std::vector<core::Operation> operations;
  operations.reserve(batch.size());
  for (auto& pending : batch) operations.push_back(std::move(pending.operation));

  storage::ApplyTimings timings;
  auto effects = apply_with_retries(operations, timings);
  const auto applied = std::chrono::steady_clock::now();
  std::vector<core::Outcome> outcomes;
  // What the cache gets before anyone is answered.
  std::vector<core::Account> published;
  int64_t last_event_id = 0;
  const auto publish = [&published](core::BatchEffects& committed) {
    published.reserve(published.size() + committed.created.size() + committed.updated.size());
    for (auto& a : committed.created) published.push_back(std::move(a));
    for (auto& a : committed.updated) published.push_back(std::move(a));
  };
  if (effects.ok()) {
    if (metrics_) {
      const double apply_seconds = std::chrono::duration<double>(applied - started).count();
      metrics_->stage(Stage::backpressure).Observe(timings.backpressure_seconds);
      metrics_->stage(Stage::durable).Observe(timings.durable_seconds);
      metrics_->stage(Stage::decide).Observe(std::max(
          0.0, apply_seconds - timings.backpressure_seconds - timings.durable_seconds));
    }
    publish(effects.value());
    last_event_id = effects.value().last_event_id;
    outcomes = std::move(effects.value().outcomes);
  } else if (effects.error().code != Code::unavailable && operations.size() > 1) {
    // A permanent error caused by one operation must not fail its neighbours: apply them
    // one by one (linked transfers together), so only the culprit fails.
    observe::log(observe::LogLevel::error, "batch failed, applying its operations one by one",
                 {{"error.message", effects.error().detail}});
    for (size_t i = 0; i < operations.size();) {
      size_t unit = 1;
      if (const auto* transfer = std::get_if<core::Transfer>(&operations[i]); transfer && transfer->link != 0) {
        while (i + unit < operations.size()) {
          const auto* next = std::get_if<core::Transfer>(&operations[i + unit]);
          if (next == nullptr || next->link != transfer->link) break;
          ++unit;
        }
      }
      auto single = apply_with_retries(std::span(operations).subspan(i, unit), timings);
      if (single.ok()) {
        publish(single.value());
        last_event_id = std::max(last_event_id, single.value().last_event_id);
        for (auto& outcome : single.value().outcomes) outcomes.push_back(std::move(outcome));
      } else {
        for (size_t k = 0; k < unit; ++k) {
          outcomes.push_back(core::Outcome{.code = single.error().code, .detail = single.error().detail});
        }
      }
      i += unit;
    }
  } else {
    if (metrics_) metrics_->commit_failures.Increment();
    observe::log(observe::LogLevel::error, "commit failed",
                 {{"error.message", effects.error().detail},
                  {"operations", std::to_string(operations.size())}});
    const Code code =
        effects.error().code == Code::unavailable ? Code::unavailable : Code::internal;
    outcomes.assign(operations.size(), core::Outcome{.code = code, .detail = effects.error().detail});
  }
  if (metrics_) {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    metrics_->commit_seconds.Observe(seconds);
    metrics_->batch_operations.Observe(static_cast<double>(operations.size()));
    for (size_t i = 0; i < outcomes.size(); ++i) {
      if (outcomes[i].replayed) {
        metrics_->replays.Increment();
      } else {
        metrics_->outcome(EngineStats::operation_kind(operations[i]), outcomes[i].code).Increment();
        if (outcomes[i].transaction && !outcomes[i].transaction->risk_decision.empty()) {
          metrics_->risk_decision(*outcomes[i].transaction);
        }
      }
    }
  }
  if (last_event_id > 0) {
    MutexLock lock(listener_mutex_);
    if (commit_listener_) commit_listener_(last_event_id);
  }
  publish_then_complete(batch, std::move(outcomes), std::move(published), applied);
}

void Engine::publish_then_complete(std::vector<Pending>& batch,
                                   std::vector<core::Outcome>&& outcomes,
                                   std::vector<core::Account>&& published,
                                   std::chrono::steady_clock::time_point applied) {
  struct Answer {
    std::vector<Pending> batch;
    std::vector<core::Outcome> outcomes;
  };
  auto answer = std::make_shared<Answer>(Answer{std::move(batch), std::move(outcomes)});
  batch = {};
  batch.reserve(options_.batch_operations_max);
  {
    MutexLock lock(mutex_);
    ++publishing_;
  }
  // Inline for an in-process cache; on the cache's thread for Redis, while this
  // committer goes on to its next batch.
  cache_.put_many_async(std::move(published), [this, answer, applied] {
    const auto completing = std::chrono::steady_clock::now();
    if (metrics_) {
      metrics_->stage(Stage::publish).Observe(
          std::chrono::duration<double>(completing - applied).count());
    }
    complete(answer->batch, answer->outcomes);
    if (metrics_) metrics_->stage(Stage::complete).Observe(storage::seconds_since(completing));
    MutexLock lock(mutex_);
    if (--publishing_ == 0) published_.notify_all();
  });
}

void Engine::complete(std::vector<Pending>& batch, std::vector<core::Outcome>& outcomes) {
  assert(batch.size() == outcomes.size());
  for (size_t i = 0; i < batch.size(); ++i) batch[i].done(std::move(outcomes[i]));
}

Result<core::Account> Engine::stored_account(std::string_view number) {
  auto stored = store_.account(number);
  if (stored.ok()) cache_.put_many_async({stored.value()}, [] {});
  return stored;
}

}  // namespace balanced::engine
