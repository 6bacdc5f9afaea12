// The hold sweeper (DESIGN.md section 10, "Expiry"): each run finds the holds still
// pending past their expiresAt and submits one expire for each through the engine, so an
// expiry rides the one batching committer like any operation. Exactly once: the committer
// expires a hold only while it is pending, and an expire's id is one per hold
// (core::expire_transaction_id), so two replicas sweeping together cannot both record it.
// Run by the singleton runner: on MySQL the lease holder, on SQLite the one process; after
// a restart its first run expires every hold that fell due meanwhile.
#pragma once

#include <cstdint>
#include <string>

#include "engine/clock.h"
#include "engine/engine.h"
#include "jobs/job.h"
#include "observe/registry.h"

namespace balanced::jobs {

struct HoldExpiryOptions {
  // Holds expired per run at most (--hold-expiry-batch-max); the rest wait for the next.
  size_t batch_max = 1000;
  // How long a run waits for the engine to answer its expires.
  int64_t wait_ms_max = 30'000;
};

class HoldExpiry final : public Job {
 public:
  // The engine, clock and registry must outlive the job.
  HoldExpiry(engine::Engine& engine, engine::Clock& clock, observe::Registry& registry, HoldExpiryOptions options);
  std::string name() const override { return "hold_expiry"; }
  Status run(int64_t fence) override;

 private:
  engine::Engine& engine_;
  engine::Clock& clock_;
  const HoldExpiryOptions options_;
  prometheus::Counter& expired_;
};

}  // namespace balanced::jobs
