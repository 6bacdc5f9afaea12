// Copies the ledger file's write-ahead log back into the file on a thread of its own
// (`checkpoint`), so that the materializer — the one writer, and the stage batches wait
// for — spends its time writing rows. In its profile under batches, SQLite's automatic
// checkpoint (run by the writer after the commit that fills the log) was 14 % of its time.
//
// The writer's connection hands its commits to watch(): after each one the log's size
// comes back here; past wal_pages the thread is woken to run a PASSIVE checkpoint (it
// never blocks the writer or a reader). Should the thread fall behind — it runs at the
// materializer's nice value — the writer checkpoints inline past wal_pages_inline, as
// SQLite would, after the thread's run if one is under way (two checkpoints cannot run at
// once, and the writer's would copy nothing), so the log never holds more than
// wal_pages_inline and the commit that reached it.
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <string>
#include <thread>

#include "core/codes.h"
#include "core/mutex.h"
#include "storage/sqlite/sqlite_db.h"

namespace balanced::storage::sqlite {

class Checkpointer {
 public:
  // 1,000 pages is SQLite's own automatic checkpoint point (16 MiB of 16 KiB pages).
  static constexpr int wal_pages = 1000;
  static constexpr int wal_pages_inline = 8 * wal_pages;

  Checkpointer() = default;
  ~Checkpointer() { stop(); }
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // Opens a connection of its own to `path` and starts the thread at `nice`.
  Status start(const std::string& path, const ConnectionOptions& options, int nice);
  // Turns `writer`'s automatic checkpoints off and reports its commits to this. REQUIRES:
  // started; `writer` outlives this or is unwatched by stop() first.
  void watch(sqlite3* writer);
  // Stops and joins the thread; hands `writer` its automatic checkpoints back.
  void stop();
  // Checkpoints the thread has run that left frames copied back into the file (tests: a
  // connection that does not know the file is in WAL mode "succeeds" copying nothing).
  uint64_t checkpoints() const { return checkpoints_.load(std::memory_order_relaxed); }

 private:
  static int on_commit(void* self, sqlite3* db, const char* schema, int pages);
  void run(int nice);

  Connection db_;
  sqlite3* writer_ = nullptr;
  std::thread thread_;
  Mutex mutex_;
  std::condition_variable wake_;
  bool wanted_ GUARDED_BY(mutex_) = false;
  bool stopping_ GUARDED_BY(mutex_) = false;
  // Held by whoever checkpoints: the thread, or the writer past wal_pages_inline. A PASSIVE
  // checkpoint waits for nothing, so the writer waits at most one of the thread's runs.
  Mutex running_;
  std::atomic<uint64_t> checkpoints_{0};
};

}  // namespace balanced::storage::sqlite
