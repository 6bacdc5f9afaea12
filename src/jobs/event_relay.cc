#include "jobs/event_relay.h"

#include <algorithm>
#include <chrono>

#include "observe/log.h"

namespace balanced::jobs {
namespace {

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

EventRelay::EventRelay(storage::Store& store, Lease& lease, std::unique_ptr<EventSink> sink,
                       observe::Registry& registry, EventRelayOptions options)
    : store_(store),
      lease_(lease),
      sink_(std::move(sink)),
      name_(sink_->name()),
      options_(options),
      delivered_(registry.counters("balanced_events_relayed_total", "Events a relay's target confirmed")
                     .Add({{"relay", name_}})),
      failures_(registry.counters("balanced_event_relay_failures_total",
                                  "Deliveries a relay's target failed or refused (retried with backoff)")
                    .Add({{"relay", name_}})),
      skipped_(registry.counters("balanced_event_relay_skipped_total",
                                 "Events pruned before a relay confirmed them (a relay added after they were kept "
                                 "no longer, or retention run without it)")
                   .Add({{"relay", name_}})),
      position_gauge_(registry.gauges("balanced_event_relay_position", "The last event id a relay's target confirmed")
                          .Add({{"relay", name_}})),
      lag_seconds_(registry.gauges("balanced_event_relay_lag_seconds",
                                   "Age of the last event a relay's target confirmed when it did (0 when caught up)")
                       .Add({{"relay", name_}})),
      thread_([this] {
        observe::name_this_thread("relay-" + name_);
        loop();
      }) {}

EventRelay::~EventRelay() { stop(); }

void EventRelay::stop() {
  {
    MutexLock lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  sink_->cancel();
  if (thread_.joinable()) thread_.join();
}

bool EventRelay::pause(int64_t ms) {
  MutexLock lock(mutex_);
  return lock.wait_for(wake_, std::chrono::milliseconds(ms), [&]() REQUIRES(mutex_) { return stopping_; });
}

void EventRelay::loop() {
  int64_t position = -1;  // unknown until read from the store, and again after the lease is lost
  int64_t retry_ms = options_.retry_initial_ms;
  int64_t wait_ms = 0;
  while (!pause(wait_ms)) wait_ms = round(position, retry_ms);
}

int64_t EventRelay::round(int64_t& position, int64_t& retry_ms) {
  // The fence: another replica may hold the lease now, and relay from the stored position.
  if (auto held = lease_.hold(); !held.ok()) {
    position = -1;
    return options_.lease_wait_ms;
  }
  auto fail = [&](const std::string& what, const std::string& detail) {
    failures_.Increment();
    observe::log(observe::LogLevel::warn, what,
                 {{"relay", name_}, {"error", detail}, {"retry_ms", std::to_string(retry_ms)}});
    const int64_t wait = retry_ms;
    retry_ms = std::min(retry_ms * 2, options_.retry_max_ms);
    return wait;
  };
  if (position < 0) {
    auto stored = store_.relay_position(name_);
    if (!stored.ok()) return fail("a relay could not read its position", stored.error().detail);
    position = stored.value();
    position_gauge_.Set(static_cast<double>(position));
  }
  auto page = store_.events_after(position, options_.batch_max);
  if (!page.ok()) return fail("a relay could not read the change feed", page.error().detail);
  const int64_t oldest = page.value().oldest;
  if (oldest > 0 && position < oldest - 1) {
    // Gone before this relay confirmed them: a relay new to this ledger starts at the
    // oldest kept; one that fell behind retention says how many it lost.
    if (position > 0) {
      skipped_.Increment(static_cast<double>(oldest - 1 - position));
      observe::log(observe::LogLevel::error, "events were pruned before the relay delivered them",
                   {{"relay", name_}, {"from", std::to_string(position + 1)}, {"to", std::to_string(oldest - 1)}});
    }
    position = oldest - 1;
    return 0;
  }
  const auto& events = page.value().events;
  if (events.empty()) {
    lag_seconds_.Set(0);
    return options_.poll_ms;
  }
  const EventSink::Delivered delivered = sink_->deliver(events);
  // The lag: the age of the oldest event not confirmed yet, or of the last confirmed
  // (how late it arrived) when the round confirmed them all; a failing relay's grows.
  const auto& behind = events[std::min(delivered.confirmed, events.size() - 1)];
  lag_seconds_.Set(static_cast<double>(std::max<int64_t>(0, unix_ms() - behind.occurred_at_ms)) / 1000.0);
  if (delivered.confirmed > 0) {
    const auto& last = events[delivered.confirmed - 1];
    position = last.id;
    delivered_.Increment(static_cast<double>(delivered.confirmed));
    position_gauge_.Set(static_cast<double>(position));
    // Kept in memory when the store is down: the next confirmation stores it, and a
    // restart meanwhile delivers these again (at least once).
    if (Status stored = store_.confirm_relay(name_, position); !stored.ok()) {
      observe::log(observe::LogLevel::warn, "a relay could not store its position",
                   {{"relay", name_}, {"error", stored.detail()}});
    }
  }
  if (!delivered.status.ok()) return fail("a relay's target failed", delivered.status.detail());
  retry_ms = options_.retry_initial_ms;
  return 0;
}

}  // namespace balanced::jobs
