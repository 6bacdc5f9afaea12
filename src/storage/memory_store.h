// The in-memory twin of a real store: same contract, no durability. Tests use it to
// exercise the engine and the API without a file, and to inject storage failures.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <unordered_map>

#include "storage/store.h"

namespace balanced::storage {

class MemoryStore final : public Store {
 public:
  using Store::apply;
  Result<core::BatchEffects> apply(std::span<const core::Operation> operations,
                                   int64_t now_ms, ApplyTimings& timings) override;
  Result<core::Account> account(std::string_view number) override;
  Result<core::Transaction> transaction(std::string_view id) override;
  Result<BalanceAt> balance_at(std::string_view number, int64_t at_ms) override;
  Result<HistoryPage> holds(std::string_view number, std::optional<int64_t> before_sequence,
                            size_t limit) override;
  Result<std::vector<std::string>> overdue_holds(int64_t now_ms, size_t limit) override;
  Result<HistoryPage> review_holds(std::string_view rule, std::optional<int64_t> before_sequence, size_t limit) override;
  Result<HistoryPage> history(std::string_view number, std::optional<int64_t> before_sequence,
                              size_t limit) override;
  Result<EventPage> events_after(int64_t after, size_t limit) override;
  Result<int64_t> prune_events(int64_t before_ms, size_t limit, int64_t through_max) override;
  Result<int64_t> relay_position(std::string_view relay) override;
  Result<core::Volumes> volumes(std::string_view currency, int64_t from_hour, int64_t to_hour) override;
  Result<std::map<core::TransactionType, core::DailyTotal>> flows(std::string_view number, int64_t from_day,
                                                                 int64_t to_day) override;
  Status confirm_relay(std::string_view relay, int64_t position) override;
  Status ping() override;
  Status scan(ScanVisitor& visitor) override;

  // Fault injection: the next `count` calls to apply() fail with Code::unavailable and
  // write nothing; while `down`, every call (reads and ping too) fails.
  void fail_next_applies(int count) { failing_applies_ = count; }
  void set_down(bool down) { down_ = down; }
  // The next `count` calls to apply() commit, and then fail with Code::unavailable as a
  // COMMIT whose answer was lost with its connection does.
  void lose_next_commit_answers(int count) { losing_answers_ = count; }
  // Every apply() waits this long before it starts (a database that stopped answering).
  void set_apply_delay_ms(int delay_ms) { apply_delay_ms_ = delay_ms; }
  // Calls to apply() begun and ended so far.
  int applies_started() const { return applies_started_.load(); }
  int applies_ended() const { return applies_ended_.load(); }

 private:
  class Transaction;
  // The rows `wanted` keeps, newest first, with sequence < before_sequence: a page.
  HistoryPage newest_first(std::optional<int64_t> before_sequence, size_t limit,
                           const std::function<bool(const core::Transaction&)>& wanted);

  std::mutex mutex_;
  std::map<std::string, core::Account, std::less<>> accounts_;
  std::vector<core::Transaction> transactions_;  // index = sequence - 1
  std::unordered_map<std::string, size_t> by_id_;
  std::unordered_map<std::string, std::string> reference_owners_;  // --unique-references
  std::vector<core::AuditRecord> audit_;
  std::deque<core::StoredEvent> events_;  // ids first_event_id_, first_event_id_ + 1, ...
  int64_t first_event_id_ = 1;
  std::map<std::string, int64_t> relay_positions_;  // by relay name
  core::DailyTotals daily_totals_;
  core::Volumes volumes_;
  std::atomic<int> failing_applies_{0};
  std::atomic<int> losing_answers_{0};
  std::atomic<int> apply_delay_ms_{0};
  std::atomic<int> applies_started_{0};
  std::atomic<int> applies_ended_{0};
  std::atomic<bool> down_{false};
};

}  // namespace balanced::storage
