#include "jobs/event_retention.h"

#include <algorithm>
#include <limits>

namespace balanced::jobs {

EventRetention::EventRetention(storage::Store& store, engine::Clock& clock, observe::Registry& registry,
                               EventRetentionOptions options)
    : store_(store),
      clock_(clock),
      options_(options),
      pruned_(registry.counter("balanced_events_pruned_total", "Events this replica deleted past their retention")) {}

Status EventRetention::run(int64_t /*fence*/) {
  int64_t through_max = std::numeric_limits<int64_t>::max();
  for (const auto& relay : options_.relays) {
    auto position = store_.relay_position(relay);
    if (!position.ok()) return position.status();
    through_max = std::min(through_max, position.value());
  }
  auto pruned = store_.prune_events(clock_.now_ms() - options_.retention_ms, options_.batch_max, through_max);
  if (!pruned.ok()) return pruned.status();
  pruned_.Increment(static_cast<double>(pruned.value()));
  return {};
}

}  // namespace balanced::jobs
