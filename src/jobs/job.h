// A job that must run on one replica at a time (elected by a Lease, see lease.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/codes.h"

namespace balanced::jobs {

class Job {
 public:
  virtual ~Job() = default;
  virtual std::string name() const = 0;
  // One run; every write it makes carries `fence`, the lease's fencing token.
  virtual Status run(int64_t fence) = 0;
};

// Runs several jobs under one lease, each every run, in order; fails when any failed.
class JobList final : public Job {
 public:
  // The job must outlive the list.
  void add(Job& job) { jobs_.push_back(&job); }
  std::string name() const override {
    std::string names;
    for (const Job* job : jobs_) names += (names.empty() ? "" : "+") + job->name();
    return names;
  }
  Status run(int64_t fence) override {
    Status first;
    for (Job* job : jobs_) {
      Status status = job->run(fence);
      if (first.ok() && !status.ok()) first = std::move(status);
    }
    return first;
  }

 private:
  std::vector<Job*> jobs_;
};

}  // namespace balanced::jobs
