// One replica's kept windows of its sources' committed debits, for the risk rules'
// velocity (DESIGN.md section 11): a batch then reads only the rows of a source that came
// after the ones it read last (any replica's, by sequence), not the source's whole day.
//
// Why reading past the highest sequence seen is exact: a debit changes its source's
// balance, so its batch holds the source's row lock from before its row took a sequence
// until its COMMIT. A batch that reads while holding that lock therefore sees every
// debit of the source committed so far, and every later one takes a sequence after the
// lock is released, above every sequence allocated before (AUTO_INCREMENT only grows).
// A new server (a failover, where a replica that missed the last commits can give out
// sequences again) breaks that: the windows are dropped whenever this process opens a
// database connection (mysql::connections_opened()), and read again as needed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/risk.h"

namespace balanced::storage::mysql {

class DebitWindows {
 public:
  // Sources kept at most; past it the kept windows are dropped and read again as needed.
  static constexpr size_t accounts_max = 65'536;

  // A source's row read past the highest sequence seen: any type and status (each moves
  // the sequence seen), counted only when a committed debit.
  struct Row {
    int64_t sequence = 0;
    int64_t created_at_ms = 0;
    int64_t amount = 0;
    bool debit = false;
  };

  // The highest sequence of `source` read into its kept window, when it is kept and can
  // answer for `now_ms`; nullopt: read its day.
  std::optional<int64_t> seen(const std::string& source, int64_t now_ms);
  // Adds the rows read past `from` to the source's window and answers its velocity at
  // `now_ms`; nullopt when the window was dropped or moved since seen() (read its day).
  std::optional<core::Velocity> extend(const std::string& source, int64_t from, const std::vector<Row>& rows,
                                       int64_t now_ms);
  // A window read whole: the day's committed debits and the highest sequence of any row
  // of the source.
  core::Velocity keep(const std::string& source, std::vector<core::DebitWindow::Debit> debits, int64_t seen,
                      int64_t now_ms);

 private:
  struct Kept {
    core::DebitWindow window;
    int64_t seen = 0;
  };
  // Drops every window when a connection opened since the last look. REQUIRES: mutex_.
  void forget_on_new_connection();

  std::mutex mutex_;
  std::unordered_map<std::string, Kept> kept_;
  int64_t connections_seen_ = -1;
};

}  // namespace balanced::storage::mysql
