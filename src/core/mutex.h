// A mutex that clang's thread-safety analysis (-Wthread-safety) understands, so that
// `GUARDED_BY(mutex_)` on shared state is checked at compile time: touching the state
// without holding the lock is a build error. Not I/O; header-only.
#pragma once

#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define BALANCED_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define BALANCED_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) BALANCED_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY BALANCED_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) BALANCED_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) BALANCED_THREAD_ANNOTATION(pt_guarded_by(x))
#define REQUIRES(...) BALANCED_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define ACQUIRE(...) BALANCED_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) BALANCED_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define EXCLUDES(...) BALANCED_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))

namespace balanced {

class CAPABILITY("mutex") Mutex {
 public:
  void lock() ACQUIRE() { mutex_.lock(); }
  void unlock() RELEASE() { mutex_.unlock(); }

 private:
  friend class MutexLock;
  std::mutex mutex_;
};

// Holds a Mutex for its scope; can wait on a condition variable meanwhile.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mutex) ACQUIRE(mutex) : lock_(mutex.mutex_) {}
  ~MutexLock() RELEASE() = default;
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  // Waits until `ready()` holds; the mutex is held again when it returns.
  template <typename Predicate>
  void wait(std::condition_variable& condition, Predicate ready) {
    condition.wait(lock_, ready);
  }
  // As wait(), for at most `timeout`; returns ready().
  template <typename Duration, typename Predicate>
  bool wait_for(std::condition_variable& condition, Duration timeout, Predicate ready) {
    return condition.wait_for(lock_, timeout, ready);
  }
  // Releases the mutex for the rest of the scope, or until relock().
  void unlock() RELEASE() { lock_.unlock(); }
  void relock() ACQUIRE() { lock_.lock(); }

 private:
  std::unique_lock<std::mutex> lock_;
};

}  // namespace balanced
