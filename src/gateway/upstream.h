// The balanced replicas behind the gateway, their health and their load.
//
// Discovery (DESIGN.md section 12): each --upstream is http://HOST:PORT. An address is one
// replica. A name is resolved again every resolve interval ("gw-resolve"), and every
// address it resolves to is a replica of its own, with its own pools, health and metrics
// (labelled host:port): a Kubernetes headless Service lists every pod. An address that
// vanishes is drained (never chosen again; its in-flight requests finish) and its slot
// reused once empty; a failed or empty answer keeps the last set; a name that resolves to
// nothing at start still starts (503 until it does).
//
// Health: active checks (GET /readyz every interval on a thread of their own, "gw-health")
// take a replica out after failures_to_eject failures in a row and put it back after one
// pass; a refused connection (passive) takes it out at once. A replica found after the
// start waits for its first passing check (a pod listed before it is ready). Choice: the
// less loaded of two random healthy replicas (power of two choices), by requests in flight.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/codes.h"
#include "core/mutex.h"
#include "net/url.h"
#include "observe/registry.h"

namespace balanced::gateway {

// One slot of the replica table. A slot holds one address for as long as its generation
// stays the same; a drained slot is given to a new address with the next generation.
struct Replica {
  enum class State { empty, active, draining };
  std::atomic<State> state{State::empty};
  std::atomic<uint64_t> generation{0};
  std::atomic<bool> healthy{false};
  std::atomic<int> failures{0};       // active checks failed in a row
  std::atomic<int64_t> in_flight{0};
  prometheus::Gauge* healthy_gauge = nullptr;    // guarded by Upstreams' table mutex
  prometheus::Counter* ejections = nullptr;      // guarded by Upstreams' table mutex

  // The address (an IP literal and port) and its "host:port" name, as of `generation`.
  struct Target {
    net::HostPort address;
    std::string name;
    uint64_t generation = 0;
  };
  Target target() const {
    MutexLock lock(mutex);
    return target_;
  }

 private:
  friend class Upstreams;
  mutable Mutex mutex;
  Target target_ GUARDED_BY(mutex);
};

struct HealthOptions {
  int64_t interval_ms = 1000;
  int64_t timeout_ms = 1000;
  int failures_to_eject = 2;
};

class Upstreams {
 public:
  // Replicas known at once, across every --upstream, at most: the table's size.
  static constexpr size_t replicas_max = 256;
  // Addresses one name may resolve to that are taken, at most (more are ignored, logged).
  static constexpr size_t addresses_per_name_max = 128;

  // `urls`: http://host:port each. The registry (may be null) must outlive this. Names
  // are resolved once here; an address is in rotation at once.
  static Result<std::unique_ptr<Upstreams>> parse(const std::vector<std::string>& urls,
                                                  observe::Registry* registry);
  ~Upstreams();

  // Slots in the table (replicas_max): the proxy keeps per-slot pools.
  size_t capacity() const { return replicas_.size(); }
  // Replicas in rotation or draining now.
  size_t size() const;
  Replica& at(size_t index) { return *replicas_[index]; }
  size_t healthy_count() const;
  // Power of two choices among healthy active replicas other than `exclude` (-1: none);
  // -1 when there is none.
  int choose(int exclude);
  // A refused or failed connection: out until an active check passes.
  void mark_failed(size_t index);

  // Starts the active checks and, when a name was given, its re-resolution every
  // `resolve_interval_ms`; both stop in the destructor.
  void start(HealthOptions health, int64_t resolve_interval_ms);
  // Resolves every name once more and updates the table (what the resolver thread does).
  void resolve_now();

 private:
  struct Source {
    std::string host;  // as given: a name, or an address
    uint16_t port = 0;
    bool is_address = false;
    std::vector<net::HostPort> last;  // its addresses as last resolved (kept on failure)
  };
  Upstreams() = default;
  void check_loop(HealthOptions options);
  void resolve_loop(int64_t interval_ms);
  // Makes the table hold exactly `wanted` (sorted, unique): new addresses take empty
  // slots (`healthy_at_once`: in rotation before any check), vanished ones drain.
  void reconcile(const std::vector<net::HostPort>& wanted, bool healthy_at_once) REQUIRES(table_mutex_);
  // Frees draining slots whose requests have all finished.
  void release_drained() REQUIRES(table_mutex_);
  void set_healthy(Replica& replica, bool healthy, const char* reason);

  std::vector<std::unique_ptr<Replica>> replicas_;  // replicas_max slots, fixed
  Mutex table_mutex_;                               // membership changes and metrics
  std::vector<Source> sources_ GUARDED_BY(table_mutex_);
  prometheus::Family<prometheus::Gauge>* healthy_family_ = nullptr;
  prometheus::Family<prometheus::Counter>* ejections_family_ = nullptr;
  prometheus::Gauge* replicas_gauge_ = nullptr;
  Mutex stop_mutex_;
  std::condition_variable stop_wake_;
  bool stopping_ GUARDED_BY(stop_mutex_) = false;
  std::thread checker_;
  std::thread resolver_;
};

}  // namespace balanced::gateway
