// The change feed's long-polls (GET /events?wait=): requests waiting for an event past
// the last one they saw. The engine's commit listener wakes those an event reached; a
// thread of its own wakes the rest at their deadline. No request holds a thread or a
// database connection while it waits.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <thread>

#include "core/mutex.h"

namespace balanced::engine {

class EventWaiters {
 public:
  using Clock = std::chrono::steady_clock;
  // Called exactly once: after an event past `after` committed, at the deadline, or when
  // the waiters stop. Runs on the notifying thread: it should only hand the work on.
  using Wake = std::function<void()>;

  // At most `waiters_max` wait at once.
  explicit EventWaiters(size_t waiters_max);
  ~EventWaiters();  // stop(), and waits for the timer thread
  EventWaiters(const EventWaiters&) = delete;
  EventWaiters& operator=(const EventWaiters&) = delete;

  // Waits for an event with an id above `after`, until `deadline`; when one was notified
  // already, calls `wake` at once. False, without calling `wake`, when waiters_max are
  // waiting already.
  // `ticket`, when given, names the wait for cancel() (0 when `wake` ran at once).
  bool wait(int64_t after, Clock::time_point deadline, Wake wake, uint64_t* ticket = nullptr);
  // Drops wait `ticket` if it still waits (its reader went away): `wake` is never called.
  void cancel(uint64_t ticket);
  // Events up to `last_event_id` committed: wakes the waiters that were waiting for them.
  void notify(int64_t last_event_id);
  size_t waiting();
  // Wakes every waiter now (a draining server answers them before it closes) and
  // refuses new ones.
  void stop();
  bool stopping();

 private:
  struct Waiter {
    int64_t after = 0;
    Wake wake;
    uint64_t ticket = 0;
  };
  void run();

  const size_t waiters_max_;
  Mutex mutex_;
  std::condition_variable changed_;
  std::multimap<Clock::time_point, Waiter> waiters_ GUARDED_BY(mutex_);  // by deadline
  bool stopping_ GUARDED_BY(mutex_) = false;
  int64_t last_notified_ GUARDED_BY(mutex_) = 0;
  uint64_t last_ticket_ GUARDED_BY(mutex_) = 0;
  std::thread thread_;
};

}  // namespace balanced::engine
