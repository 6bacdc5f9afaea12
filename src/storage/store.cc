#include "storage/store.h"

#include <algorithm>

namespace balanced::storage {

HistoryPage page_of(std::vector<core::Transaction> rows, size_t limit) {
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.sequence > b.sequence; });
  rows.erase(std::unique(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.sequence == b.sequence; }),
             rows.end());
  HistoryPage page;
  if (rows.size() > limit) {
    rows.resize(limit);
    page.next_cursor = rows.back().sequence;
  }
  page.transactions = std::move(rows);
  return page;
}

}  // namespace balanced::storage
