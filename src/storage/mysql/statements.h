// Small pieces of SQL text the MySQL store builds statements from, and the one loop
// that cuts rows into statements of at most `rows_max` rows.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>

#include "storage/mysql/mysql_db.h"

namespace balanced::storage::mysql {

// Calls chunk(start, end) for [0, n) cut into runs of at most rows_max, in order.
// Stops at, and returns, the first chunk's error (a Status), or OK.
template <typename Chunk>
Status for_each_chunk(size_t n, size_t rows_max, Chunk&& chunk) {
  for (size_t start = 0; start < n; start += rows_max) {
    if (Status s = chunk(start, std::min(n, start + rows_max)); !s.ok()) return s;
  }
  return {};
}

inline void append_int(std::string& sql, int64_t value) { sql += std::to_string(value); }

// "(a, b, c)" of quoted values: the IN list of a chunk.
template <typename Range>
void append_in_list(Connection& c, std::string& sql, const Range& values) {
  sql.push_back('(');
  bool first = true;
  for (const auto& value : values) {
    if (!first) sql.push_back(',');
    first = false;
    c.append_quoted(sql, value);
  }
  sql.push_back(')');
}

}  // namespace balanced::storage::mysql
