// Seals the MySQL audit log into its hash chain (see mysql_store.h): the singleton job
// a replicated MySQL deployment runs on the lease holder.
#pragma once

#include <optional>

#include "jobs/job.h"
#include "observe/registry.h"
#include "storage/mysql/mysql_store.h"

namespace balanced::storage {

struct AuditSealStats {
  explicit AuditSealStats(observe::Registry& registry);
  prometheus::Counter& sealed;    // records this replica chained
  prometheus::Gauge& unsealed;    // records waiting for the chain (leader's view)
};

class AuditSealJob final : public jobs::Job {
 public:
  static constexpr size_t records_per_statement_max = 1000;
  static constexpr size_t records_per_run_max = 50'000;

  // The store and the registry (which may be null) must outlive the job.
  AuditSealJob(MysqlStore& store, observe::Registry* registry) : store_(store) {
    if (registry) stats_.emplace(*registry);
  }
  std::string name() const override { return "audit-seal"; }
  Status run(int64_t fence) override;

 private:
  MysqlStore& store_;
  std::optional<AuditSealStats> stats_;
};

}  // namespace balanced::storage
