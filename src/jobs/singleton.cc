#include "jobs/singleton.h"

#include "observe/log.h"

namespace balanced::jobs {

SingletonStats::SingletonStats(observe::Registry& registry)
    : leader(registry.gauge("balanced_singleton_leader",
                            "1 while this replica holds the singleton-job lease")),
      job_failures(registry.counter("balanced_singleton_job_failures_total",
                                    "Singleton job runs that failed (fenced off or storage down)")) {}

SingletonRunner::SingletonRunner(Lease& lease, Job& job, SingletonStats* stats,
                                 int64_t interval_ms)
    : lease_(lease), job_(job), stats_(stats), interval_ms_(interval_ms) {
  thread_ = std::thread([this] {
    observe::name_this_thread("singleton");
    loop();
  });
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
    if (stats_) stats_->leader.Set(leading ? 1 : 0);
    if (!leading) continue;
    if (auto status = job_.run(token.value()); !status.ok()) {
      if (stats_) stats_->job_failures.Increment();
      observe::log(observe::LogLevel::warn, "singleton job failed",
                   {{"job", job_.name()}, {"error.message", status.detail()}});
    }
  }
}

}  // namespace balanced::jobs
