#include "storage/sqlite/checkpointer.h"

#include <sys/resource.h>
#include <unistd.h>

#include "observe/log.h"

namespace balanced::storage::sqlite {

Status Checkpointer::start(const std::string& path, const ConnectionOptions& options, int nice) {
  if (auto s = db_.open(path, SQLITE_OPEN_READWRITE, options); !s.ok()) return s;
  // Opens the file and its log now: a connection that has read nothing does not know the
  // file is in WAL mode, and its checkpoints do nothing.
  if (auto s = db_.exec("PRAGMA journal_mode = WAL"); !s.ok()) return s;
  thread_ = std::thread([this, nice] { run(nice); });
  return {};
}

void Checkpointer::watch(sqlite3* writer) {
  writer_ = writer;
  sqlite3_wal_hook(writer, &Checkpointer::on_commit, this);
}

void Checkpointer::stop() {
  if (writer_ != nullptr) {
    sqlite3_wal_autocheckpoint(writer_, wal_pages);  // SQLite's own hook again
    writer_ = nullptr;
  }
  {
    MutexLock lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

// On the writer's thread, right after each of its commits.
int Checkpointer::on_commit(void* self, sqlite3* db, const char* schema, int pages) {
  auto& checkpointer = *static_cast<Checkpointer*>(self);
  if (pages >= wal_pages_inline) {
    // The thread is behind: the writer catches up itself, after the thread's run if one is
    // under way (the checkpoint lock is one at a time, and a PASSIVE checkpoint that finds
    // it taken copies nothing: the log would grow for as long as the thread's run lasts).
    MutexLock running(checkpointer.running_);
    (void)sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  } else if (pages >= wal_pages) {
    {
      MutexLock lock(checkpointer.mutex_);
      checkpointer.wanted_ = true;
    }
    checkpointer.wake_.notify_one();
  }
  return SQLITE_OK;
}

void Checkpointer::run(int nice) {
  observe::name_this_thread("checkpoint");
  ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), nice);
  for (;;) {
    {
      MutexLock lock(mutex_);
      lock.wait(wake_, [&]() REQUIRES(mutex_) { return wanted_ || stopping_; });
      if (stopping_) return;
      wanted_ = false;
    }
    // PASSIVE: copies what no reader still needs, waits for no one. BUSY means another
    // process holds the checkpoint lock; the next commit asks again.
    int frames_in_log = -1;
    int frames_checkpointed = -1;  // in the log, copied by this run or an earlier one
    MutexLock running(running_);
    const int rc = sqlite3_wal_checkpoint_v2(db_.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                             &frames_in_log, &frames_checkpointed);
    if (rc == SQLITE_OK) {
      if (frames_checkpointed > 0) checkpoints_.fetch_add(1, std::memory_order_relaxed);
    } else if ((rc & 0xff) != SQLITE_BUSY) {
      observe::log(observe::LogLevel::warn, "checkpoint of the ledger file failed; the next commit retries",
                   {{"error.message", sqlite3_errmsg(db_.get())}});
    }
  }
}

}  // namespace balanced::storage::sqlite
