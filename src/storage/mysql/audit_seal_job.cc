#include "storage/mysql/audit_seal_job.h"

namespace balanced::storage {

AuditSealStats::AuditSealStats(observe::Registry& registry)
    : sealed(registry.counter("balanced_audit_sealed_total",
                              "Audit records this replica chained into the hash chain")),
      unsealed(registry.gauge("balanced_audit_unsealed",
                              "Audit records written but not yet chained, as last seen by the leader")) {}

Status AuditSealJob::run(int64_t fence) {
  size_t sealed_total = 0;
  while (sealed_total < records_per_run_max) {
    auto sealed = store_.seal_audit(fence, records_per_statement_max);
    if (!sealed.ok()) return sealed.status();
    sealed_total += static_cast<size_t>(sealed.value().sealed);
    if (stats_) stats_->sealed.Increment(static_cast<double>(sealed.value().sealed));
    if (sealed.value().sealed < static_cast<int64_t>(records_per_statement_max)) break;
  }
  if (stats_) {
    auto unsealed = store_.unsealed_audit_records();
    if (unsealed.ok()) stats_->unsealed.Set(static_cast<double>(unsealed.value()));
  }
  return {};
}

}  // namespace balanced::storage
