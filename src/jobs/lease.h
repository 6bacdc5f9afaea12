// Leader election for singleton jobs: a lease that one replica holds at a time, with a
// fencing token that grows with every new holder.
//
// A lease alone cannot make a job safe (a holder can pause past its expiry and wake up
// still believing it leads), so every write a job makes carries the token and the
// database refuses a token lower than one it has seen. The lease only makes it likely
// that one replica does the work; the fence makes it impossible for two to corrupt it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "redis/client.h"
#include "core/codes.h"

namespace balanced::jobs {

class Lease {
 public:
  virtual ~Lease() = default;
  // Acquires the lease or renews it; the fencing token while this process holds it,
  // Code::forbidden while another does, Code::unavailable when the lease service is down.
  virtual Result<int64_t> hold() = 0;
  // Gives the lease up at once (on shutdown), if held.
  virtual void release() = 0;
};

struct RedisLeaseOptions {
  std::string name = "balanced:singleton";  // becomes the hash tag of both keys
  std::string owner;                         // unique per process
  int64_t ttl_ms = 10'000;
};

// SET NX PX with a holder id, renewed by the holder; the token is INCR of a counter
// next to it (same hash tag, so one cluster slot and one Lua script do both).
class RedisLease final : public Lease {
 public:
  RedisLease(redis::Client& client, RedisLeaseOptions options);
  Result<int64_t> hold() override;
  void release() override;

 private:
  redis::Client& client_;
  const RedisLeaseOptions options_;
  const std::string holder_key_;
  const std::string fence_key_;
};

// No lease service (MySQL without Redis): every replica runs the job with token 0, and
// the database's row lock on the chain head serializes them.
class EveryoneLeads final : public Lease {
 public:
  Result<int64_t> hold() override { return int64_t{0}; }
  void release() override {}
};

}  // namespace balanced::jobs
