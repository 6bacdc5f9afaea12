#include "jobs/singleton.h"

#include "observe/log.h"
#include "observe/metrics.h"
#include "storage/mysql/mysql_store.h"

namespace balanced::jobs {

SingletonRunner::SingletonRunner(Lease& lease, Job& job, observe::Metrics* metrics,
                                 int64_t interval_ms)
    : lease_(lease), job_(job), metrics_(metrics), interval_ms_(interval_ms) {
  thread_ = std::thread([this] { loop(); });
}

SingletonRunner::~SingletonRunner() { stop(); }

void SingletonRunner::stop() {
  {
    MutexLock lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
    lease_.release();
  }
}

void SingletonRunner::loop() {
  bool leading = false;
  for (;;) {
    {
      MutexLock lock(mutex_);
      if (lock.wait_for(wake_, std::chrono::milliseconds(interval_ms_),
                        [&]() REQUIRES(mutex_) { return stopping_; })) {
        return;
      }
    }
    auto token = lease_.hold();
    if (token.ok() != leading) {
      leading = token.ok();
      observe::log(observe::LogLevel::info, leading ? "leading singleton job" : "not leading",
                   {{"job", job_.name()},
                    {"reason", token.ok() ? "fence " + std::to_string(token.value())
                                          : token.error().detail}});
    }
    if (metrics_) metrics_->singleton_leader.Set(leading ? 1 : 0);
    if (!leading) continue;
    if (auto status = job_.run(token.value()); !status.ok()) {
      if (metrics_) metrics_->job_failures.Increment();
      observe::log(observe::LogLevel::warn, "singleton job failed",
                   {{"job", job_.name()}, {"error", status.detail()}});
    }
  }
}

Status AuditSealJob::run(int64_t fence) {
  size_t sealed_total = 0;
  while (sealed_total < records_per_run_max) {
    auto sealed = store_.seal_audit(fence, records_per_statement_max);
    if (!sealed.ok()) return sealed.status();
    sealed_total += static_cast<size_t>(sealed.value().sealed);
    if (metrics_) metrics_->audit_sealed.Increment(static_cast<double>(sealed.value().sealed));
    if (sealed.value().sealed < static_cast<int64_t>(records_per_statement_max)) break;
  }
  if (metrics_) {
    auto unsealed = store_.unsealed_audit_records();
    if (unsealed.ok()) metrics_->audit_unsealed.Set(static_cast<double>(unsealed.value()));
  }
  return {};
}

}  // namespace balanced::jobs
