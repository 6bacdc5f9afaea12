// A job that must run on one replica at a time (elected by a Lease, see lease.h).
#pragma once

#include <cstdint>
#include <string>

#include "core/codes.h"

namespace balanced::jobs {

class Job {
 public:
  virtual ~Job() = default;
  virtual std::string name() const = 0;
  // One run; every write it makes carries `fence`, the lease's fencing token.
  virtual Status run(int64_t fence) = 0;
};

}  // namespace balanced::jobs
