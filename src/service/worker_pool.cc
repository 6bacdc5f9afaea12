#include "service/worker_pool.h"

#include <pthread.h>

namespace balanced::service {

WorkerPool::WorkerPool(std::string name, size_t threads, size_t queued_max) : queued_max_(queued_max) {
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) {
    threads_.emplace_back([this] { run(); });
    // Linux keeps 15 bytes of a thread's name.
    (void)pthread_setname_np(threads_.back().native_handle(), name.substr(0, 15).c_str());
  }
}

WorkerPool::~WorkerPool() { stop(); }

void WorkerPool::stop() {
  {
    MutexLock lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_all();
  std::call_once(joined_, [this] {
    for (auto& thread : threads_) thread.join();
  });
}

bool WorkerPool::stopping() const {
  MutexLock lock(mutex_);
  return stopping_;
}

bool WorkerPool::post(std::function<void()> job) {
  {
    MutexLock lock(mutex_);
    if (stopping_ || jobs_.size() >= queued_max_) return false;
    jobs_.push_back(std::move(job));
  }
  ready_.notify_one();
  return true;
}

void WorkerPool::run() {
  while (true) {
    std::function<void()> job;
    {
      MutexLock lock(mutex_);
      lock.wait(ready_, [&]() REQUIRES(mutex_) { return !jobs_.empty() || stopping_; });
      if (jobs_.empty()) return;  // stopping, and nothing left
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

}  // namespace balanced::service
