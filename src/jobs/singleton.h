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
#include "jobs/lease.h"

namespace balanced::observe {
class Metrics;
}
namespace balanced::storage {
class MysqlStore;
}

namespace balanced::jobs {

class Job {
 public:
  virtual ~Job() = default;
  virtual std::string name() const = 0;
  // One run; every write it makes carries `fence`.
  virtual Status run(int64_t fence) = 0;
};

class SingletonRunner {
 public:
  // The lease, job and metrics (which may be null) must outlive the runner.
  SingletonRunner(Lease& lease, Job& job, observe::Metrics* metrics, int64_t interval_ms);
  ~SingletonRunner();
  SingletonRunner(const SingletonRunner&) = delete;
  SingletonRunner& operator=(const SingletonRunner&) = delete;
  // Stops the loop, joins it and gives the lease up. Idempotent.
  void stop();

 private:
  void loop();
  Lease& lease_;
  Job& job_;
  observe::Metrics* metrics_;
  const int64_t interval_ms_;
  Mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ GUARDED_BY(mutex_) = false;
  std::thread thread_;
};

// Seals the MySQL audit log into its hash chain (see storage/mysql/mysql_store.h).
class AuditSealJob final : public Job {
 public:
  static constexpr size_t records_per_statement_max = 1000;
  static constexpr size_t records_per_run_max = 50'000;

  AuditSealJob(storage::MysqlStore& store, observe::Metrics* metrics)
      : store_(store), metrics_(metrics) {}
  std::string name() const override { return "audit-seal"; }
  Status run(int64_t fence) override;

 private:
  storage::MysqlStore& store_;
  observe::Metrics* metrics_;
};

}  // namespace balanced::jobs
