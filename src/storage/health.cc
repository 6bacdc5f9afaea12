#include "storage/health.h"

#include "core/monotonic.h"
#include "observe/log.h"

namespace balanced::storage {

StorageHealth::StorageHealth(Store& store, observe::Registry* registry, HealthOptions options)
    : store_(store), options_(options) {
  ping_once();
  if (registry != nullptr) {
    auto& up = registry->gauge("balanced_storage_up",
                               "1 while the store answers its pings (the last within its deadline), else 0");
    auto& replica = registry->gauge(
        "balanced_storage_synchronous_replica",
        "1 while the MySQL primary has a semi-synchronous replica (RPO 0), 0 when it fell back to "
        "asynchronous replication, -1 when semi-sync is not enabled there (or not MySQL)");
    registry->on_scrape([this, &up, &replica] {
      up.Set(status().ok() ? 1 : 0);
      replica.Set(static_cast<double>(synchronous_replica_.load(std::memory_order_relaxed)));
    });
  }
  thread_ = std::thread([this] {
    observe::name_this_thread("storage-health");
    run();
  });
}

StorageHealth::~StorageHealth() {
  {
    MutexLock lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

Status StorageHealth::status() const {
  const int64_t started = ping_started_ms_.load(std::memory_order_acquire);
  if (started != 0 && core::monotonic_ms() - started > options_.ping_deadline_ms) {
    return Status(Code::unavailable, "storage has not answered a ping for " +
                                         std::to_string(core::monotonic_ms() - started) + " ms");
  }
  MutexLock lock(mutex_);
  return last_;
}

void StorageHealth::ping_once() {
  ping_started_ms_.store(core::monotonic_ms(), std::memory_order_release);
  Status status = store_.ping();
  if (status.ok()) {
    auto replica = store_.synchronous_replica();
    if (replica.ok()) {
      const int state = !replica.value().has_value() ? -1 : *replica.value() ? 1 : 0;
      if (state == 0 && synchronous_replica_.load() == 1) {
        observe::log(observe::LogLevel::error,
                     "the database primary lost its semi-synchronous replica: commits are acknowledged "
                     "from one server only");
      }
      synchronous_replica_.store(state, std::memory_order_relaxed);
    }
  }
  ping_started_ms_.store(0, std::memory_order_release);
  MutexLock lock(mutex_);
  if (status.ok() != last_.ok()) {
    if (status.ok()) {
      observe::log(observe::LogLevel::info, "storage answers again");
    } else {
      observe::log(observe::LogLevel::error, "storage is down", {{"error.message", status.detail()}});
    }
  }
  last_ = std::move(status);
}

void StorageHealth::run() {
  for (;;) {
    {
      MutexLock lock(mutex_);
      if (lock.wait_for(wake_, std::chrono::milliseconds(options_.interval_ms),
                        [&]() REQUIRES(mutex_) { return stopping_; })) {
        return;
      }
    }
    ping_once();
  }
}

}  // namespace balanced::storage
