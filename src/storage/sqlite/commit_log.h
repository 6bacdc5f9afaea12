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
// little-endian. A new segment starts when the current one passes segment_bytes_max.
// Reading stops at the first record that is incomplete or fails its CRC: in the last
// segment that is a write torn by a crash (never acknowledged: fdatasync had not
// returned), and the tail is cut off; anywhere else it is corruption and an error.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/codes.h"
#include "core/mutex.h"

namespace balanced::storage {

// The directory that holds a ledger's commit log.
std::string commit_log_path(const std::string& ledger_path);

class CommitLog {
 public:
  static constexpr uint64_t segment_bytes_max_default = 64ull << 20;
  // A record's payload, at most (a batch of 8,190 transfers encodes to ~2 MiB).
  static constexpr uint32_t record_bytes_max = 256u << 20;

  CommitLog() = default;
  ~CommitLog();
  CommitLog(const CommitLog&) = delete;
  CommitLog& operator=(const CommitLog&) = delete;

  // Opens (creating the directory if need be) and reads every record, in order, handing
  // each with a batch number above `after_batch` to `visit`; cuts a torn tail off the
  // last segment. A visit that fails stops the read with its status. `durable`: fdatasync
  // each append (false: durable against a process crash only).
  using Visit = std::function<Status(int64_t batch, std::string_view payload)>;
  Status open(const std::string& directory, bool durable, int64_t after_batch, const Visit& visit,
              uint64_t segment_bytes_max = segment_bytes_max_default);

  // Appends one record and makes it durable. On failure the log refuses every later
  // append (an fdatasync that failed leaves the file's state unknown): the store
  // answers unavailable until it is reopened.
  // REQUIRES: one caller at a time (the committer); batch numbers increase.
  Status append(int64_t batch, std::string_view payload);

  // The highest batch number read or appended (0 for an empty log).
  int64_t last_batch() const;

  // Unlinks every segment, except the one being appended to, whose records are all at
  // or below `batch` (materialized into the ledger file). Thread-safe.
  Status release_through(int64_t batch);

  // Copies every segment into `to` (a new directory), for a backup: each segment as far
  // as it has been written when it is read. Segments released meanwhile are skipped
  // (their batches are in the ledger file). Thread-safe; reads files only.
  static Status copy(const std::string& from, const std::string& to);
  // Removes the directory and everything in it.
  static void remove(const std::string& directory);

 private:
  struct Segment {
    uint64_t number = 0;
    int64_t last_batch = 0;  // 0 while it holds no record
  };
  Status start_segment(uint64_t number);
  std::string segment_path(uint64_t number) const;

  std::string directory_;
  bool durable_ = true;
  uint64_t segment_bytes_max_ = segment_bytes_max_default;
  int fd_ = -1;          // the segment being appended to
  uint64_t size_ = 0;    // its size
  bool broken_ = false;  // an append failed: no more
  std::string record_;   // the record being written, reused

  mutable Mutex mutex_;
  std::vector<Segment> segments_ GUARDED_BY(mutex_);  // oldest first; the last is fd_'s
};

}  // namespace balanced::storage
