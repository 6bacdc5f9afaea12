// A fixed set of threads running jobs from a bounded queue: blocking work (an outgoing
// HTTP call within its deadline) kept off the I/O threads. A job that does not fit is
// refused at once, never queued without limit.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/mutex.h"

namespace balanced::service {

class WorkerPool {
 public:
  // `threads` threads named `name`, at most `queued_max` jobs waiting.
  WorkerPool(std::string name, size_t threads, size_t queued_max);
  // stop().
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // False (and `job` dropped) when `queued_max` jobs wait already or the pool is stopping.
  bool post(std::function<void()> job);
  // Takes no more jobs, runs the ones queued, joins the threads. Idempotent.
  void stop();
  bool stopping() const;

 private:
  void run();

  const size_t queued_max_;
  mutable Mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_ GUARDED_BY(mutex_);
  bool stopping_ GUARDED_BY(mutex_) = false;
  std::vector<std::thread> threads_;
  std::once_flag joined_;
};

}  // namespace balanced::service
