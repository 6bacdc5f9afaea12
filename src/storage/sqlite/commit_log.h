// The SQLite store's commit log: append-only segment files in the directory
// PATH.commitlog, one record per committed batch, each record fdatasync'ed before the
// batch is acknowledged.
//
// Why not a SQLite table (the first design): a table needs its old rows deleted and its
// write-ahead log checkpointed, and both ran inside the committer's durable commit; the
// commit that carried them took 20-70 ms instead of half a millisecond, and every request
// queued behind it waited as long (docs/BENCHMARKS.md, "The write-path stall"). Here a
// commit is one write(2) and one fdatasync(2); old segments are unlinked whole, by the
// materializer, off the commit path.
//
// Segment files are named by a sequence number (00000000000000000001.log, ...). A record:
//
//   u32 payload length | u32 CRC-32C of (batch, payload) | i64 batch | payload
//
// little-endian. A new segment starts when the next record would not fit in
// segment_bytes_max. Segments are written full of zeros ahead of time, by a thread of the
// log's own (`log-prepare`), then renamed into place: an append then overwrites blocks the
// file already has, and its fdatasync flushes the data alone, never the inode or the
// extent tree (measured here: a third less time in fdatasync, and its p99.9 from 25 ms to
// 10 ms). When no prepared segment is ready, a plain one is used, and replaced by the next
// prepared one as soon as that is ready.
//
// Reading a segment stops at a header of zeros (the unused rest of a prepared segment) or
// at its end. A record that is incomplete or fails its CRC is, in the last segment, a write
// torn by a crash (never acknowledged: fdatasync had not returned), and the segment is cut
// there; anywhere else it is corruption and an error.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/codes.h"
#include "core/mutex.h"

namespace balanced::storage {

// The directory that holds a ledger's commit log.
std::string commit_log_path(const std::string& ledger_path);

class CommitLog {
 public:
  static constexpr uint64_t segment_bytes_max_default = 16ull << 20;
  // A record's payload, at most (a batch of 8,190 transfers encodes to ~2 MiB).
  static constexpr uint32_t record_bytes_max = 256u << 20;

  CommitLog() = default;
  ~CommitLog();
  CommitLog(const CommitLog&) = delete;
  CommitLog& operator=(const CommitLog&) = delete;

  // Opens (creating the directory if need be) and reads every record, in order, handing
  // each with a batch number above `after_batch` to `visit`; cuts a torn tail off the
  // last segment. A visit that fails stops the read with its status. `durable`: fdatasync
  // each append (false: durable against a process crash only). Starts the thread that
  // prepares segments.
  using Visit = std::function<Status(int64_t batch, std::string_view payload)>;
  // `prepare_segments` false: plain segments only (tests that count segments).
  Status open(const std::string& directory, bool durable, int64_t after_batch, const Visit& visit,
              uint64_t segment_bytes_max = segment_bytes_max_default, bool prepare_segments = true);

  // Appends one record and makes it durable. On failure the log refuses every later
  // append (an fdatasync that failed leaves the file's state unknown): the store
  // answers unavailable until it is reopened.
  // REQUIRES: one caller at a time (the committer); batch numbers increase.
  Status append(int64_t batch, std::string_view payload);

  // The highest batch number read or appended (0 for an empty log).
  int64_t last_batch() const;
  // True once an append failed: every later one fails too. Thread-safe.
  bool broken() const { return broken_.load(std::memory_order_relaxed); }

  // Unlinks every segment, except the one being appended to, whose records are all at
  // or below `batch` (materialized into the ledger file). Thread-safe.
  Status release_through(int64_t batch);

  // Copies every segment into `to` (a new directory), for a backup: each segment as far
  // as it has been written when it is read. Segments released meanwhile are skipped
  // (their batches are in the ledger file). Thread-safe; reads files only.
  static Status copy(const std::string& from, const std::string& to);
  // Removes the directory and everything in it.
  static void remove(const std::string& directory);

  // For tests: waits until a prepared segment is ready, or preparing one failed.
  void wait_for_prepared_segment();

 private:
  struct Segment {
    uint64_t number = 0;
    int64_t last_batch = 0;  // 0 while it holds no record
  };
  Status start_segment(uint64_t number);
  std::string segment_path(uint64_t number) const;
  bool prepared_segment_ready() const;
  void run_preparer();

  std::string directory_;
  bool durable_ = true;
  uint64_t segment_bytes_max_ = segment_bytes_max_default;
  int fd_ = -1;          // the segment being appended to
  uint64_t size_ = 0;    // the bytes of records in it
  bool current_prepared_ = false;  // it was written full of zeros beforehand
  std::atomic<bool> broken_{false};  // an append failed: no more

  mutable Mutex mutex_;
  std::vector<Segment> segments_ GUARDED_BY(mutex_);  // oldest first; the last is fd_'s
  // The preparer's: it makes one prepared segment (a file of zeros, `*.zero`) whenever
  // `prepared_path_` is empty and one is wanted.
  std::condition_variable prepared_changed_;
  std::string prepared_path_ GUARDED_BY(mutex_);
  bool preparing_failed_ GUARDED_BY(mutex_) = false;
  bool stopping_ GUARDED_BY(mutex_) = false;
  std::thread preparer_;
};

}  // namespace balanced::storage
