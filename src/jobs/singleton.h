// Runs a job on the one replica that holds a lease, every interval, with the lease's
// fencing token. Replicas that do not hold the lease try to take it each interval, so
// when the leader dies another takes over within the lease TTL.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <string>
#include <thread>

#include "core/codes.h"
#include "core/mutex.h"
#include "jobs/job.h"
#include "jobs/lease.h"
#include "observe/registry.h"

namespace balanced::jobs {

struct SingletonStats {
  explicit SingletonStats(observe::Registry& registry);
  prometheus::Gauge& leader;         // 1 while this replica holds the lease
  prometheus::Counter& job_failures;  // job runs that failed (fenced off, storage down)
};

class SingletonRunner {
 public:
  // The lease, job and stats (which may be null) must outlive the runner.
  SingletonRunner(Lease& lease, Job& job, SingletonStats* stats, int64_t interval_ms);
  ~SingletonRunner();
  SingletonRunner(const SingletonRunner&) = delete;
  SingletonRunner& operator=(const SingletonRunner&) = delete;
  // Stops the loop, joins it and gives the lease up. Idempotent.
  void stop();

 private:
  void loop();
  Lease& lease_;
  Job& job_;
  SingletonStats* stats_;
  const int64_t interval_ms_;
  Mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ GUARDED_BY(mutex_) = false;
  std::thread thread_;
};

}  // namespace balanced::jobs
