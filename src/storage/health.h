// Whether storage answers, known without waiting on it: a thread pings the store every
// interval; a ping that fails, or that has not answered within its deadline (a database
// that stopped answering, blackholed rather than refused), marks storage down at once.
// /readyz and the gauge balanced_storage_up read the last verdict and never block, so a
// stalled database holds neither the kubelet's probes nor Prometheus's scrapes. Each good
// ping also asks whether the primary has a synchronous replica
// (balanced_storage_synchronous_replica: the RPO 0 of DESIGN.md section 12 holds only then).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <string>
#include <thread>

#include "core/codes.h"
#include "core/mutex.h"
#include "observe/registry.h"
#include "storage/store.h"

namespace balanced::storage {

struct HealthOptions {
  int64_t interval_ms = 1000;       // between the end of one ping and the next
  int64_t ping_deadline_ms = 2000;  // a ping still running this long marks storage down
};

class StorageHealth {
 public:
  // Pings once before returning (the first verdict), then on its own thread. The store and
  // registry (may be null) must outlive this.
  StorageHealth(Store& store, observe::Registry* registry, HealthOptions options);
  ~StorageHealth();
  StorageHealth(const StorageHealth&) = delete;
  StorageHealth& operator=(const StorageHealth&) = delete;

  // The last verdict: ok, or why storage is down. Never blocks on the store. Thread-safe.
  Status status() const;

 private:
  void run();
  void ping_once();

  Store& store_;
  const HealthOptions options_;
  mutable Mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ GUARDED_BY(mutex_) = false;
  Status last_ GUARDED_BY(mutex_);
  // Set while a ping runs: the steady-clock time it began, in ms; 0 when none runs.
  std::atomic<int64_t> ping_started_ms_{0};
  // Store::synchronous_replica() as of the last good ping: 1, 0, or -1 (not in use).
  std::atomic<int> synchronous_replica_{-1};
  std::thread thread_;
};

}  // namespace balanced::storage
