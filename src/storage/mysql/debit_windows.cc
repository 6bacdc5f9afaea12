#include "storage/mysql/debit_windows.h"

#include <algorithm>

#include "storage/mysql/mysql_db.h"

namespace balanced::storage::mysql {

void DebitWindows::forget_on_new_connection() {
  const int64_t opened = connections_opened();
  if (opened == connections_seen_) return;
  kept_.clear();
  connections_seen_ = opened;
}

std::optional<int64_t> DebitWindows::seen(const std::string& source, int64_t now_ms) {
  std::lock_guard lock(mutex_);
  forget_on_new_connection();
  auto it = kept_.find(source);
  if (it == kept_.end() || !it->second.window.answers(now_ms)) return std::nullopt;
  return it->second.seen;
}

std::optional<core::Velocity> DebitWindows::extend(const std::string& source, int64_t from,
                                                   const std::vector<Row>& rows, int64_t now_ms) {
  std::lock_guard lock(mutex_);
  forget_on_new_connection();
  auto it = kept_.find(source);
  if (it == kept_.end() || it->second.seen != from || !it->second.window.answers(now_ms)) return std::nullopt;
  Kept& kept = it->second;
  for (const Row& row : rows) {
    if (row.sequence <= from) continue;  // not past what was seen: counted already
    if (row.debit) kept.window.add(row.created_at_ms, row.amount);
    kept.seen = std::max(kept.seen, row.sequence);
  }
  return kept.window.velocity(now_ms);
}

core::Velocity DebitWindows::keep(const std::string& source, std::vector<core::DebitWindow::Debit> debits,
                                  int64_t seen, int64_t now_ms) {
  core::DebitWindow window(std::move(debits), now_ms);
  const core::Velocity velocity = window.velocity(now_ms);
  std::lock_guard lock(mutex_);
  forget_on_new_connection();
  if (kept_.size() >= accounts_max && !kept_.contains(source)) kept_.clear();
  kept_.insert_or_assign(source, Kept{.window = std::move(window), .seen = seen});
  return velocity;
}

}  // namespace balanced::storage::mysql
