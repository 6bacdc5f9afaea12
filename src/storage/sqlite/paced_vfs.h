// A SQLite VFS over the default one that paces a connection's writes: after every
// `paced_write_bytes` written to a file it writes the file's dirty pages back and, while
// a commit-log fdatasync is under way or has just ended, waits for the device to take
// them (sync_file_range, no cache flush), so the device's queue never holds more than
// that much of the connection's writing in front of a commit's fdatasync.
//
// Why: the materializer writes each chunk (tens of MiB: WAL frames, then the checkpoint)
// in one burst, and a commit-log fdatasync issued meanwhile flushes the device's cache
// with the whole burst in it: measured here, the transfers' p99 was 15-21 ms with the
// ledger file on the commit log's disk and 6-7 ms with it on tmpfs (docs/BENCHMARKS.md,
// "Where the transfer tail comes from"). The checkpoint thread (checkpointer.h) opens the
// file through this VFS too, and the commit log's own segment preparer paces its writes
// the same way.
#pragma once

#include <cstddef>
#include <cstdint>

namespace balanced::storage::sqlite {

// 256 KiB: in alternated runs (pacing by fsync) p99 was 5.4-6.3 ms at 256 KiB, 6.0-7.0
// at 1 MiB, 6.9-8.3 at 4 MiB, and 15-17 ms unpaced. Writing back without waiting gave
// 8-10 ms; waiting, 5.8-6.1 ms, as fsync pacing, without its cost to batches.
inline constexpr size_t paced_write_bytes = 256u << 10;

// The wait matters only near a commit-log fdatasync: one under way, or one that ended
// less than this long ago (a stream of single transfers keeps one always near). Away from
// them (between the commits of large batches) the write-back is started, not waited for.
inline constexpr int64_t commit_sync_near_ns = 2'000'000;

// Batches of 4,000, eight alternated pairs: +3 % transfers/s on average (6 pairs of 8
// higher, as much as waiting on none), single transfers' p99 and p99.9 unchanged.
//
// Marks a commit-log fdatasync for the pacing, for as long as it lives.
class CommitSyncMark {
 public:
  CommitSyncMark();
  ~CommitSyncMark();
  CommitSyncMark(const CommitSyncMark&) = delete;
  CommitSyncMark& operator=(const CommitSyncMark&) = delete;
};

// Whether a commit-log fdatasync is under way or ended less than commit_sync_near_ns ago.
bool commit_sync_near();

// Registers the VFS (once, thread-safe) and returns its name, for sqlite3_open_v2.
// Null if it cannot be registered (no default VFS): callers then open without it.
const char* paced_vfs();
// Write-backs the VFS has made so far, over every connection (tests, diagnostics).
uint64_t paced_writebacks();

}  // namespace balanced::storage::sqlite
