#include "engine/event_waiters.h"

#include <algorithm>
#include <vector>

#include "observe/log.h"

namespace balanced::engine {

EventWaiters::EventWaiters(size_t waiters_max) : waiters_max_(waiters_max), thread_([this] { run(); }) {}

EventWaiters::~EventWaiters() {
  stop();
  thread_.join();
}

void EventWaiters::stop() {
  {
    MutexLock lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
}

bool EventWaiters::wait(int64_t after, Clock::time_point deadline, Wake wake, uint64_t* ticket) {
  if (ticket) *ticket = 0;
  {
    MutexLock lock(mutex_);
    if (stopping_ || waiters_.size() >= waiters_max_) return false;
    if (last_notified_ <= after) {
      const uint64_t id = ++last_ticket_;
      waiters_.emplace(deadline, Waiter{after, std::move(wake), id});
      if (ticket) *ticket = id;
      wake = nullptr;
    }
  }
  if (wake) {  // committed between the caller's read and now
    wake();
    return true;
  }
  changed_.notify_all();  // the deadline may be the earliest now
  return true;
}

void EventWaiters::notify(int64_t last_event_id) {
  std::vector<Wake> woken;
  {
    MutexLock lock(mutex_);
    last_notified_ = std::max(last_notified_, last_event_id);
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (it->second.after < last_event_id) {
        woken.push_back(std::move(it->second.wake));
        it = waiters_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& wake : woken) wake();
}

void EventWaiters::cancel(uint64_t ticket) {
  Wake dropped;  // destroyed outside the lock: it may own what its waiter held
  MutexLock lock(mutex_);
  for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
    if (it->second.ticket == ticket) {
      dropped = std::move(it->second.wake);
      waiters_.erase(it);
      break;
    }
  }
}

bool EventWaiters::stopping() {
  MutexLock lock(mutex_);
  return stopping_;
}

size_t EventWaiters::waiting() {
  MutexLock lock(mutex_);
  return waiters_.size();
}

void EventWaiters::run() {
  observe::name_this_thread("event-waits");
  while (true) {
    std::vector<Wake> due;
    bool stop = false;
    {
      MutexLock lock(mutex_);
      if (waiters_.empty()) {
        lock.wait(changed_, [&]() REQUIRES(mutex_) { return stopping_ || !waiters_.empty(); });
      } else {
        const auto earliest = waiters_.begin()->first;
        lock.wait_for(changed_, earliest - Clock::now(), [&]() REQUIRES(mutex_) {
          return stopping_ || waiters_.empty() || waiters_.begin()->first < earliest;
        });
      }
      stop = stopping_;
      const auto now = Clock::now();
      while (!waiters_.empty() && (stop || waiters_.begin()->first <= now)) {
        due.push_back(std::move(waiters_.begin()->second.wake));
        waiters_.erase(waiters_.begin());
      }
    }
    for (auto& wake : due) wake();
    if (stop) return;
  }
}

}  // namespace balanced::engine
