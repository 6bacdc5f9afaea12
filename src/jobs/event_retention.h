// The change feed's retention (DESIGN.md section 11): each run deletes the events older
// than --events-retention-h, the oldest first, at most batch_max of them. A reader whose
// `after` falls below the oldest kept is answered 410 events_expired. Run by the
// singleton runner (the lease holder on MySQL, the one process on SQLite). The relays
// configured hold it back: nothing past the lowest position they confirmed goes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/clock.h"
#include "jobs/job.h"
#include "observe/registry.h"
#include "storage/store.h"

namespace balanced::jobs {

struct EventRetentionOptions {
  int64_t retention_ms = 168LL * 3'600'000;  // --events-retention-h
  size_t batch_max = 10'000;                 // events deleted per run at most
  std::vector<std::string> relays;           // the relays' names (event_relay.h)
};

class EventRetention final : public Job {
 public:
  // The store, clock and registry must outlive the job.
  EventRetention(storage::Store& store, engine::Clock& clock, observe::Registry& registry,
                 EventRetentionOptions options);
  std::string name() const override { return "event_retention"; }
  Status run(int64_t fence) override;

 private:
  storage::Store& store_;
  engine::Clock& clock_;
  const EventRetentionOptions options_;
  prometheus::Counter& pruned_;
};

}  // namespace balanced::jobs
