// The change feed's relays (DESIGN.md section 11): a thread that reads the feed past the
// last position its target confirmed and delivers the events to it, at least once and in
// id order, storing each confirmed position in the database so a restart, or another
// replica taking the lease over, resumes from there. It relays only while this replica
// holds the lease (checked before each delivery); a failed delivery is retried from the
// first unconfirmed event with capped exponential backoff.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <thread>

#include "core/codes.h"
#include "core/mutex.h"
#include "core/types.h"
#include "jobs/lease.h"
#include "observe/registry.h"
#include "storage/store.h"

namespace balanced::jobs {

// Where a relay delivers: a broker or a URL.
class EventSink {
 public:
  struct Delivered {
    size_t confirmed = 0;  // the leading events the target confirmed
    Status status;         // why it stopped short, when it did
  };
  virtual ~EventSink() = default;
  // The relay's name, the key of its position ("webhook", "amqp").
  virtual std::string name() const = 0;
  // Delivers `events` in order; returns how many, from the first, the target confirmed.
  // A round may stop early (its time budget, cancel()) with what was confirmed so far.
  virtual Delivered deliver(std::span<const core::StoredEvent> events) = 0;
  // From another thread (the relay's stop()): makes a deliver() under way return soon.
  virtual void cancel() {}
};

struct EventRelayOptions {
  // Events read and delivered per round at most: one page of the feed; AMQP publishes
  // them all, then waits once for their confirms.
  size_t batch_max = 1000;
  int64_t poll_ms = 50;    // the wait for new events when caught up
  int64_t lease_wait_ms = 1000;  // the wait before asking for the lease again
  int64_t retry_initial_ms = 100;  // after a failure; doubled per failure in a row
  int64_t retry_max_ms = 30'000;
};

class EventRelay {
 public:
  // The store, lease and registry must outlive the relay. Starts its thread.
  EventRelay(storage::Store& store, Lease& lease, std::unique_ptr<EventSink> sink, observe::Registry& registry,
             EventRelayOptions options);
  ~EventRelay();
  EventRelay(const EventRelay&) = delete;
  EventRelay& operator=(const EventRelay&) = delete;
  // Stops and joins the thread; what was delivered and not confirmed is delivered again
  // by the next holder. Idempotent.
  void stop();
  std::string name() const { return name_; }
  // The last position confirmed and stored (0 before the first), for retention.
  Result<int64_t> position() { return store_.relay_position(name_); }

 private:
  void loop();
  // Sleeps up to `ms`, or less when stopping. True when stopping.
  bool pause(int64_t ms);
  // One round: reads past `position` and delivers. The wait before the next round.
  int64_t round(int64_t& position, int64_t& retry_ms);

  storage::Store& store_;
  Lease& lease_;
  const std::unique_ptr<EventSink> sink_;
  const std::string name_;
  const EventRelayOptions options_;
  prometheus::Counter& delivered_;
  prometheus::Counter& failures_;
  prometheus::Counter& skipped_;
  prometheus::Gauge& position_gauge_;
  prometheus::Gauge& lag_seconds_;  // the oldest unconfirmed event's age (last round)
  Mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ GUARDED_BY(mutex_) = false;
  std::thread thread_;
};

}  // namespace balanced::jobs
