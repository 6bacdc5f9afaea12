// The balanced replicas behind the gateway, their health and their load.
//
// Health: active checks (GET /readyz every interval on a thread of their own, "gw-health")
// take a replica out after failures_to_eject failures in a row and put it back after one
// pass; a refused connection (passive) takes it out at once. Choice: the less loaded of
// two random healthy replicas (power of two choices), by requests in flight.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/codes.h"
#include "net/url.h"
#include "observe/registry.h"

namespace balanced::gateway {

struct Replica {
  net::HostPort address;
  std::string name;                   // "host:port", the metrics label
  std::atomic<bool> healthy{true};    // optimistic until a check says otherwise
  std::atomic<int> failures{0};       // active checks failed in a row
  std::atomic<int64_t> in_flight{0};
  prometheus::Gauge* healthy_gauge = nullptr;
  prometheus::Counter* ejections = nullptr;
};

struct HealthOptions {
  int64_t interval_ms = 1000;
  int64_t timeout_ms = 1000;
  int failures_to_eject = 2;
};

class Upstreams {
 public:
  static constexpr size_t replicas_max = 256;
  // `urls`: http://host:port each. The registry (may be null) must outlive this.
  static Result<std::unique_ptr<Upstreams>> parse(const std::vector<std::string>& urls,
                                                  observe::Registry* registry);
  ~Upstreams();

  size_t size() const { return replicas_.size(); }
  Replica& at(size_t index) { return *replicas_[index]; }
  size_t healthy_count() const;
  // Power of two choices among healthy replicas other than `exclude` (-1: none);
  // -1 when there is none.
  int choose(int exclude);
  // A refused or failed connection: out until an active check passes.
  void mark_failed(size_t index);

  // Starts the active checks; stops in the destructor.
  void start_health_checks(HealthOptions options);

 private:
  Upstreams() = default;
  void check_loop(HealthOptions options);
  std::vector<std::unique_ptr<Replica>> replicas_;
  std::atomic<bool> stopping_{false};
  std::thread checker_;
};

}  // namespace balanced::gateway
