#include "jobs/hold_expiry.h"

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>

#include "core/ledger.h"

namespace balanced::jobs {

HoldExpiry::HoldExpiry(engine::Engine& engine, engine::Clock& clock, observe::Registry& registry,
                       HoldExpiryOptions options)
    : engine_(engine),
      clock_(clock),
      options_(options),
      expired_(registry.counter("balanced_holds_expired_total", "Holds this replica's sweeper expired")) {}

Status HoldExpiry::run(int64_t /*fence*/) {
  // The committer decides by its own clock and the hold's state, never by this list.
  auto overdue = engine_.store().overdue_holds(clock_.now_ms(), options_.batch_max);
  if (!overdue.ok()) return overdue.status();
  if (overdue.value().empty()) return {};
  std::vector<core::Operation> expires;
  expires.reserve(overdue.value().size());
  for (const auto& hold_id : overdue.value()) {
    expires.emplace_back(core::SettleHold{.type = core::TransactionType::expire,
                                          .id = core::expire_transaction_id(hold_id),
                                          .hold_id = hold_id,
                                          .operator_name = "sweeper"});
  }
  struct Wait {
    std::mutex mutex;
    std::condition_variable done;
    bool answered = false;
    Status status;
    size_t expired = 0;
  };
  auto wait = std::make_shared<Wait>();
  const bool queued = engine_.submit_group(std::move(expires), [wait](std::vector<core::Outcome>&& outcomes) {
    std::lock_guard lock(wait->mutex);
    for (const auto& outcome : outcomes) {
      if (outcome.code == Code::ok && !outcome.replayed) {
        ++wait->expired;
      } else if (outcome.code == Code::unavailable || outcome.code == Code::internal) {
        wait->status = Status(outcome.code, outcome.detail);
      }
    }
    wait->answered = true;
    wait->done.notify_all();
  });
  if (!queued) return Status(Code::overloaded, "the commit queue is full; holds expire on the next run");
  std::unique_lock lock(wait->mutex);
  if (!wait->done.wait_for(lock, std::chrono::milliseconds(options_.wait_ms_max), [&] { return wait->answered; })) {
    return Status(Code::unavailable, "the expires were not answered in time; the next run finds what is left");
  }
  expired_.Increment(static_cast<double>(wait->expired));
  return wait->status;
}

}  // namespace balanced::jobs
