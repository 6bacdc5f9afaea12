// The materializer: a thread that takes chunks of committed batches from the overlay,
// writes each chunk into the ledger file in one transaction (LedgerWriter), then lets
// the overlay forget them and the commit log release their segments.
#pragma once

#include <chrono>
#include <cstddef>
#include <thread>

#include "storage/sqlite/commit_log.h"
#include "storage/sqlite/ledger_writer.h"
#include "storage/sqlite/overlay.h"

namespace balanced::storage::sqlite {

struct MaterializerOptions {
  // Waits this long between chunks (unless the overlay is half full): the longer, the
  // more transfers share each rewritten page.
  std::chrono::milliseconds interval{1000};
  size_t chunk_transactions_max = 20'000;
  int nice = 10;  // the thread's nice value
  // After a failed chunk, before the same chunk is tried again.
  std::chrono::milliseconds retry_after{200};
};

class Materializer {
 public:
  Materializer() = default;
  Materializer(const Materializer&) = delete;
  Materializer& operator=(const Materializer&) = delete;
  ~Materializer() { join(); }

  // REQUIRES: the three outlive join().
  void start(Overlay& overlay, LedgerWriter& ledger, CommitLog& log, MaterializerOptions options);
  // Returns once the thread has materialized everything and ended; call overlay.stop()
  // first.
  void join();

 private:
  void run(Overlay& overlay, LedgerWriter& ledger, CommitLog& log, MaterializerOptions options);
  std::thread thread_;
};

}  // namespace balanced::storage::sqlite
