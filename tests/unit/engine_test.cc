// The engine over the in-memory twin: batching, bounds, retries and failures.
#include "engine/engine.h"

#include <gtest/gtest.h>

#include <deque>
#include <future>
#include <thread>

#include "cache/memory_cache.h"
#include "storage/memory_store.h"

namespace balanced::engine {
namespace {

core::Transfer transfer(std::string id, std::string from, std::string to, int64_t amount) {
  core::Transfer t{std::move(id), std::move(from), std::move(to), amount, "", "", "", ""};
  t.request_hash = core::transfer_request_hash(t);
  return t;
}

struct Fixture {
  storage::MemoryStore store;
  cache::MemoryCache cache{1000};
  ManualClock clock{1'700'000'000'000};
  std::unique_ptr<Engine> engine;

  explicit Fixture(EngineOptions options = {}) {
    options.retry_backoff_ms_initial = 1;
    engine = std::make_unique<Engine>(store, cache, clock, nullptr, options);
  }

  core::Outcome run(core::Operation operation) {
    std::promise<core::Outcome> promise;
    auto future = promise.get_future();
    EXPECT_TRUE(engine->submit(std::move(operation),
                               [&](core::Outcome&& o) { promise.set_value(std::move(o)); }));
    return future.get();
  }
};

TEST(Engine, CommitsAndPublishesToTheCache) {
  Fixture f;
  EXPECT_EQ(f.run(core::CreateAccount{"a", "USD", 10, 0, ""}).code, Code::ok);
  EXPECT_EQ(f.run(core::CreateAccount{"b", "USD", 0, 0, ""}).code, Code::ok);
  EXPECT_EQ(f.run(transfer("t", "a", "b", 4)).code, Code::ok);
  auto cached = f.cache.get("b");
  ASSERT_TRUE(cached);
  EXPECT_EQ(cached->balance, 4);
  EXPECT_EQ(f.engine->stored_account("a").value().balance, 6);
}

TEST(Engine, ManyConcurrentSubmissionsAllComplete) {
  Fixture f;
  f.run(core::CreateAccount{"a", "USD", 100000, 0, ""});
  f.run(core::CreateAccount{"b", "USD", 0, 0, ""});
  constexpr int kCount = 2000;
  std::atomic<int> ok{0};
  std::atomic<int> completed{0};
  for (int i = 0; i < kCount; ++i) {
    ASSERT_TRUE(f.engine->submit(transfer("t" + std::to_string(i), "a", "b", 1),
                                 [&](core::Outcome&& o) {
                                   if (o.code == Code::ok) ++ok;
                                   ++completed;
                                 }));
  }
  f.engine->drain();
  EXPECT_EQ(completed, kCount);
  EXPECT_EQ(ok, kCount);
  EXPECT_EQ(f.store.account("b").value().balance, kCount);
}

TEST(Engine, FullQueueRefusesAtOnce) {
  EngineOptions options;
  options.queue_depth_max = 4;
  Fixture f(options);
  f.store.set_down(true);  // the committer stalls in retries; the queue fills
  std::atomic<int> refused{0};
  std::atomic<int> completed{0};
  for (int i = 0; i < 50; ++i) {
    if (!f.engine->submit(transfer("t" + std::to_string(i), "a", "b", 1),
                          [&](core::Outcome&&) { ++completed; })) {
      ++refused;
    }
  }
  EXPECT_GT(refused, 0);
  f.store.set_down(false);
  f.engine->drain();
  EXPECT_EQ(completed + refused, 50);
}

TEST(Engine, TransientFailuresAreRetried) {
  Fixture f;
  f.run(core::CreateAccount{"a", "USD", 10, 0, ""});
  f.run(core::CreateAccount{"b", "USD", 0, 0, ""});
  f.store.fail_next_applies(3);
  EXPECT_EQ(f.run(transfer("t", "a", "b", 1)).code, Code::ok);
  EXPECT_EQ(f.store.account("b").value().balance, 1);
}

TEST(Engine, StorageDownAnswersUnavailableAndWritesNothing) {
  EngineOptions options;
  options.commit_attempts_max = 2;
  Fixture f(options);
  f.run(core::CreateAccount{"a", "USD", 10, 0, ""});
  f.run(core::CreateAccount{"b", "USD", 0, 0, ""});
  f.store.set_down(true);
  EXPECT_EQ(f.run(transfer("t", "a", "b", 1)).code, Code::unavailable);
  f.store.set_down(false);
  EXPECT_EQ(f.store.account("a").value().balance, 10);
  // The client retries with the same id and gets the one true outcome.
  auto retry = f.run(transfer("t", "a", "b", 1));
  EXPECT_EQ(retry.code, Code::ok);
  EXPECT_FALSE(retry.replayed);
}

// DESIGN.md section 12: a batch whose COMMIT landed but whose answer was lost is retried;
// the retry finds its operations committed, and the client is answered as a first attempt
// (201 / committed), not as a replay. A real replay in the same retried batch stays one.
TEST(Engine, ACommitWhoseAnswerWasLostIsAnsweredAsAFirstAttempt) {
  Fixture f;
  f.run(core::CreateAccount{"a", "USD", 10, 0, ""});
  f.run(core::CreateAccount{"b", "USD", 0, 0, ""});
  EXPECT_EQ(f.run(transfer("earlier", "a", "b", 2)).code, Code::ok);
  f.clock.advance(5);
  f.store.lose_next_commit_answers(1);
  std::promise<std::vector<core::Outcome>> promise;
  ASSERT_TRUE(f.engine->submit_group({transfer("lost", "a", "b", 3), transfer("earlier", "a", "b", 2)},
                                     [&](std::vector<core::Outcome>&& o) { promise.set_value(std::move(o)); }));
  auto outcomes = promise.get_future().get();
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_EQ(outcomes[0].code, Code::ok);
  EXPECT_FALSE(outcomes[0].replayed) << "the lost COMMIT's own transfer answered as a replay";
  EXPECT_EQ(outcomes[1].code, Code::ok);
  EXPECT_TRUE(outcomes[1].replayed) << "an earlier request's transfer answered as new";
  // Applied once.
  EXPECT_EQ(f.store.account("b").value().balance, 5);
  // A client retry after that is a replay, as always.
  auto again = f.run(transfer("lost", "a", "b", 3));
  EXPECT_EQ(again.code, Code::ok);
  EXPECT_TRUE(again.replayed);
}

// The same for an account: its creation, committed but unanswered, retried, is 201 with
// the account, not 409 account_exists; an account that existed before stays a 409.
TEST(Engine, AnAccountCreatedByALostCommitIsAnsweredCreated) {
  Fixture f;
  f.run(core::CreateAccount{"old", "USD", 0, 0, ""});
  f.clock.advance(5);
  f.store.lose_next_commit_answers(1);
  std::promise<std::vector<core::Outcome>> promise;
  ASSERT_TRUE(f.engine->submit_group({core::CreateAccount{"new", "USD", 25, 0, ""}, core::CreateAccount{"old", "USD", 0, 0, ""}},
                                     [&](std::vector<core::Outcome>&& o) { promise.set_value(std::move(o)); }));
  auto outcomes = promise.get_future().get();
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_EQ(outcomes[0].code, Code::ok) << outcomes[0].detail;
  ASSERT_TRUE(outcomes[0].account);
  EXPECT_EQ(outcomes[0].account->balance, 25);
  EXPECT_EQ(outcomes[1].code, Code::account_exists);
  EXPECT_EQ(f.store.account("new").value().balance, 25);  // created once
  // Asked again later, by anyone: it exists.
  EXPECT_EQ(f.run(core::CreateAccount{"new", "USD", 25, 0, ""}).code, Code::account_exists);
}

// DESIGN.md section 12: with --storage-deadline-ms, a request is answered 503 once the
// deadline passes, while the store still holds its batch; what a commit attempt took may
// still commit (its fate was "unknown"), what still waited in the queue never does.
TEST(Engine, AStorageDeadlineAnswers503AndDropsWhatNoAttemptTook) {
  EngineOptions options;
  options.storage_deadline_ms = 200;
  options.deadline_tick_ms = 5;
  Fixture f(options);
  f.run(core::CreateAccount{"a", "USD", 10, 0, ""});
  f.run(core::CreateAccount{"b", "USD", 0, 0, ""});
  const int before = f.store.applies_started();
  f.store.set_apply_delay_ms(3000);
  std::promise<core::Outcome> taken;
  ASSERT_TRUE(f.engine->submit(transfer("taken", "a", "b", 1), [&](core::Outcome&& o) { taken.set_value(std::move(o)); }));
  // The committer is inside the stalled store with "taken"; "waiting" queues behind it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (f.store.applies_started() == before && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  ASSERT_GT(f.store.applies_started(), before);
  std::promise<std::vector<core::Outcome>> waiting;
  ASSERT_TRUE(f.engine->submit_group({transfer("waiting", "a", "b", 2)},
                                     [&](std::vector<core::Outcome>&& o) { waiting.set_value(std::move(o)); }));
  auto taken_outcome = taken.get_future().get();
  EXPECT_EQ(taken_outcome.code, Code::unavailable);
  EXPECT_NE(taken_outcome.detail.find("200 ms"), std::string::npos) << taken_outcome.detail;
  auto waiting_outcomes = waiting.get_future().get();
  ASSERT_EQ(waiting_outcomes.size(), 1u);
  EXPECT_EQ(waiting_outcomes[0].code, Code::unavailable);
  // Both were answered while the store was still stalled in its first attempt.
  EXPECT_EQ(f.store.applies_ended(), before);
  EXPECT_EQ(f.engine->deadline_expired(), 2u);
  f.store.set_apply_delay_ms(0);
  f.engine->drain();
  // "taken" was inside an attempt: it committed (the client, told "unknown", retries and
  // finds it); "waiting" never reached the store.
  EXPECT_EQ(f.store.transaction("taken").value().amount, 1);
  EXPECT_EQ(f.store.transaction("waiting").error().code, Code::not_found);
  EXPECT_EQ(f.store.account("b").value().balance, 1);
}

TEST(Engine, DrainRefusesNewWork) {
  Fixture f;
  f.engine->drain();
  EXPECT_FALSE(f.engine->submit(transfer("t", "a", "b", 1), [](core::Outcome&&) {}));
}

TEST(Engine, AGroupIsCommittedWholeAndAnsweredOnce) {
  EngineOptions options;
  options.batch_operations_max = 2;  // smaller than the group: it goes whole, alone
  Fixture f(options);
  EXPECT_EQ(f.run(core::CreateAccount{"a", "USD", 100, 0, ""}).code, Code::ok);
  EXPECT_EQ(f.run(core::CreateAccount{"b", "USD", 0, 0, ""}).code, Code::ok);
  std::vector<core::Operation> group;
  for (int i = 0; i < 5; ++i) group.emplace_back(transfer("g" + std::to_string(i), "a", "b", 10));
  std::promise<std::vector<core::Outcome>> promise;
  auto future = promise.get_future();
  int calls = 0;
  ASSERT_TRUE(f.engine->submit_group(std::move(group), [&](std::vector<core::Outcome>&& outcomes) {
    ++calls;
    promise.set_value(std::move(outcomes));
  }));
  auto outcomes = future.get();
  ASSERT_EQ(outcomes.size(), 5u);
  for (const auto& outcome : outcomes) EXPECT_EQ(outcome.code, Code::ok);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(f.engine->stored_account("b").value().balance, 50);
  EXPECT_FALSE(f.engine->submit_group({}, [](std::vector<core::Outcome>&&) {}));
}

// A cache whose asynchronous writes wait until the test releases them: a remote cache
// that is slow to answer, without the remote.
class DeferredCache final : public cache::Cache {
 public:
  std::optional<core::Account> get(std::string_view number) override { return inner_.get(number); }
  void put_if_newer(const core::Account& account) override { inner_.put_if_newer(account); }
  cache::CacheStats stats() const override { return inner_.stats(); }
  void put_many_async(std::vector<core::Account> accounts, PutDone done) override {
    MutexLock lock(mutex_);
    held_.push_back({std::move(accounts), std::move(done)});
  }
  size_t held() {
    MutexLock lock(mutex_);
    return held_.size();
  }
  // Writes and answers the oldest held write.
  void release_one() {
    std::pair<std::vector<core::Account>, PutDone> next;
    {
      MutexLock lock(mutex_);
      ASSERT_FALSE(held_.empty());
      next = std::move(held_.front());
      held_.pop_front();
    }
    put_many_if_newer(next.first);
    next.second();
  }
  bool wait_until_held(size_t count) {
    for (int i = 0; i < 2000 && held() < count; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return held() >= count;
  }

 private:
  cache::MemoryCache inner_{1000};
  Mutex mutex_;
  std::deque<std::pair<std::vector<core::Account>, PutDone>> held_ GUARDED_BY(mutex_);
};

TEST(Engine, AnswersOnlyOnceWrittenToTheCacheWithoutHoldingTheCommitter) {
  storage::MemoryStore store;
  DeferredCache cache;
  ManualClock clock{1'700'000'000'000};
  Engine engine(store, cache, clock, nullptr, EngineOptions{});
  std::promise<core::Outcome> created;
  ASSERT_TRUE(engine.submit(core::CreateAccount{"a", "USD", 100, 0, ""},
                            [&](core::Outcome&& o) { created.set_value(std::move(o)); }));
  ASSERT_TRUE(cache.wait_until_held(1));
  cache.release_one();
  EXPECT_EQ(created.get_future().get().code, Code::ok);
  ASSERT_TRUE(engine.submit(core::CreateAccount{"b", "USD", 0, 0, ""}, [](core::Outcome&&) {}));
  ASSERT_TRUE(cache.wait_until_held(1));
  cache.release_one();

  std::promise<core::Outcome> first, second;
  auto first_answer = first.get_future(), second_answer = second.get_future();
  ASSERT_TRUE(engine.submit(transfer("t1", "a", "b", 10),
                            [&](core::Outcome&& o) { first.set_value(std::move(o)); }));
  ASSERT_TRUE(cache.wait_until_held(1));
  // Committed (the store has it) but not answered: its cache write is not made yet.
  EXPECT_EQ(store.account("b").value().balance, 10);
  EXPECT_EQ(first_answer.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout);
  // The committer is free meanwhile: the next transfer commits too.
  ASSERT_TRUE(engine.submit(transfer("t2", "a", "b", 5),
                            [&](core::Outcome&& o) { second.set_value(std::move(o)); }));
  ASSERT_TRUE(cache.wait_until_held(2));
  EXPECT_EQ(store.account("b").value().balance, 15);
  cache.release_one();
  EXPECT_EQ(first_answer.get().code, Code::ok);
  EXPECT_EQ(cache.get("b")->balance, 10);  // what its client reads through the cache
  // drain() waits for the answers still waiting on the cache.
  auto drained = std::async(std::launch::async, [&] { engine.drain(); });
  EXPECT_EQ(drained.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  cache.release_one();
  drained.get();
  EXPECT_EQ(second_answer.get().code, Code::ok);
  EXPECT_EQ(cache.get("b")->balance, 15);
}

TEST(MemoryCache, IgnoresWritesThatAreNotNewer) {
  cache::MemoryCache cache(10);
  cache.put_if_newer(core::Account{.number = "a", .balance = 5, .version = 3});
  cache.put_if_newer(core::Account{.number = "a", .balance = 1, .version = 2});
  cache.put_if_newer(core::Account{.number = "a", .balance = 9, .version = 3});
  EXPECT_EQ(cache.get("a")->balance, 5);
  cache.put_if_newer(core::Account{.number = "a", .balance = 7, .version = 4});
  EXPECT_EQ(cache.get("a")->balance, 7);
  EXPECT_EQ(cache.stats().stale_writes_ignored, 2u);
}

TEST(MemoryCache, StopsAddingWhenFullAndNeverEvicts) {
  cache::MemoryCache cache(2);
  cache.put_if_newer(core::Account{.number = "a", .version = 1});
  cache.put_if_newer(core::Account{.number = "b", .version = 1});
  cache.put_if_newer(core::Account{.number = "c", .version = 1});
  EXPECT_TRUE(cache.get("a"));
  EXPECT_TRUE(cache.get("b"));
  EXPECT_FALSE(cache.get("c"));
  cache.put_if_newer(core::Account{.number = "a", .balance = 3, .version = 2});
  EXPECT_EQ(cache.get("a")->balance, 3);
}

}  // namespace
}  // namespace balanced::engine
