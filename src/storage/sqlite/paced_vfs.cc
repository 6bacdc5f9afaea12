#include "storage/sqlite/paced_vfs.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>

#include "storage/sqlite/sqlite_db.h"

namespace balanced::storage::sqlite {
namespace {

// Our file: the header SQLite sees, then the default VFS's own file right after it.
struct PacedFile {
  sqlite3_file base;
  sqlite3_int64 unsynced;  // bytes written since this file was last written back
  // Our own descriptor of the same file, for sync_file_range. Closing it drops every
  // POSIX lock this process holds on the file (SQLite's unix VFS locks with fcntl), so it
  // closes only with the file itself, when the materializer's connection closes with the
  // store; no other connection of the store has a transaction open then.
  int fd;
  sqlite3_file* real() { return reinterpret_cast<sqlite3_file*>(this + 1); }
};

sqlite3_vfs* g_default = nullptr;
sqlite3_vfs g_vfs;
sqlite3_io_methods g_methods;
std::atomic<uint64_t> g_writebacks{0};
std::atomic<int> g_commit_syncs{0};            // commit-log fdatasyncs under way
std::atomic<int64_t> g_commit_sync_end_ns{0};  // when the last one ended (steady clock)

int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}


PacedFile* paced(sqlite3_file* file) { return reinterpret_cast<PacedFile*>(file); }
sqlite3_file* real(sqlite3_file* file) { return paced(file)->real(); }

int paced_close(sqlite3_file* f) {
  if (paced(f)->fd >= 0) ::close(paced(f)->fd);
  return real(f)->pMethods->xClose(real(f));
}
int paced_read(sqlite3_file* f, void* out, int amount, sqlite3_int64 offset) {
  return real(f)->pMethods->xRead(real(f), out, amount, offset);
}
int paced_sync(sqlite3_file* f, int flags) {
  paced(f)->unsynced = 0;
  return real(f)->pMethods->xSync(real(f), flags);
}
int paced_write(sqlite3_file* f, const void* data, int amount, sqlite3_int64 offset) {
  const int rc = real(f)->pMethods->xWrite(real(f), data, amount, offset);
  if (rc != SQLITE_OK) return rc;
  paced(f)->unsynced += amount;
  if (paced(f)->unsynced < static_cast<sqlite3_int64>(paced_write_bytes)) return rc;
  // Hand what this file holds dirty to the device and wait until it has taken it: no
  // cache flush (SQLite syncs where its ordering needs one), only a bound on what
  // queues in front of the commit log's writes. Harmless to SQLite either way.
  g_writebacks.fetch_add(1, std::memory_order_relaxed);
  paced(f)->unsynced = 0;
  if (paced(f)->fd >= 0) {
    const unsigned flags = commit_sync_near() ? SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                                    SYNC_FILE_RANGE_WAIT_AFTER
                                              : SYNC_FILE_RANGE_WRITE;
    (void)::sync_file_range(paced(f)->fd, 0, 0, flags);
    return rc;  // an I/O error shows at SQLite's own next sync
  }
  return paced_sync(f, SQLITE_SYNC_NORMAL);  // no descriptor of ours: a full sync does it
}
int paced_truncate(sqlite3_file* f, sqlite3_int64 size) { return real(f)->pMethods->xTruncate(real(f), size); }
int paced_file_size(sqlite3_file* f, sqlite3_int64* size) { return real(f)->pMethods->xFileSize(real(f), size); }
int paced_lock(sqlite3_file* f, int level) { return real(f)->pMethods->xLock(real(f), level); }
int paced_unlock(sqlite3_file* f, int level) { return real(f)->pMethods->xUnlock(real(f), level); }
int paced_check_reserved(sqlite3_file* f, int* out) {
  return real(f)->pMethods->xCheckReservedLock(real(f), out);
}
int paced_file_control(sqlite3_file* f, int op, void* arg) {
  return real(f)->pMethods->xFileControl(real(f), op, arg);
}
int paced_sector_size(sqlite3_file* f) { return real(f)->pMethods->xSectorSize(real(f)); }
int paced_device_characteristics(sqlite3_file* f) {
  return real(f)->pMethods->xDeviceCharacteristics(real(f));
}
int paced_shm_map(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  return real(f)->pMethods->xShmMap(real(f), region, size, extend, out);
}
int paced_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  return real(f)->pMethods->xShmLock(real(f), offset, n, flags);
}
void paced_shm_barrier(sqlite3_file* f) { real(f)->pMethods->xShmBarrier(real(f)); }
int paced_shm_unmap(sqlite3_file* f, int remove) { return real(f)->pMethods->xShmUnmap(real(f), remove); }
int paced_fetch(sqlite3_file* f, sqlite3_int64 offset, int amount, void** out) {
  return real(f)->pMethods->xFetch(real(f), offset, amount, out);
}
int paced_unfetch(sqlite3_file* f, sqlite3_int64 offset, void* page) {
  return real(f)->pMethods->xUnfetch(real(f), offset, page);
}

int paced_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* file, int flags, int* out_flags) {
  PacedFile* f = paced(file);
  f->base.pMethods = nullptr;
  f->unsynced = 0;
  f->fd = -1;
  const int rc = g_default->xOpen(g_default, name, f->real(), flags, out_flags);
  // SQLite calls xClose only on a file whose pMethods is set: set it only when the
  // default VFS opened one (it may set its own even on failure, to be closed).
  if (f->real()->pMethods != nullptr) {
    if (f->real()->pMethods->iVersion < 3) {
      // Every method this wrapper forwards must exist below it.
      f->real()->pMethods->xClose(f->real());
      return SQLITE_CANTOPEN;
    }
    f->base.pMethods = &g_methods;
    if (rc == SQLITE_OK && name != nullptr) f->fd = ::open(name, O_RDONLY | O_CLOEXEC);
  }
  return rc;
}

// Everything but opening files is the default VFS's.
int forward_delete(sqlite3_vfs*, const char* name, int sync_dir) {
  return g_default->xDelete(g_default, name, sync_dir);
}
int forward_access(sqlite3_vfs*, const char* name, int flags, int* out) {
  return g_default->xAccess(g_default, name, flags, out);
}
int forward_full_pathname(sqlite3_vfs*, const char* name, int size, char* out) {
  return g_default->xFullPathname(g_default, name, size, out);
}
void* forward_dl_open(sqlite3_vfs*, const char* name) { return g_default->xDlOpen(g_default, name); }
void forward_dl_error(sqlite3_vfs*, int size, char* out) { g_default->xDlError(g_default, size, out); }
void (*forward_dl_sym(sqlite3_vfs*, void* handle, const char* symbol))(void) {
  return g_default->xDlSym(g_default, handle, symbol);
}
void forward_dl_close(sqlite3_vfs*, void* handle) { g_default->xDlClose(g_default, handle); }
int forward_randomness(sqlite3_vfs*, int size, char* out) { return g_default->xRandomness(g_default, size, out); }
int forward_sleep(sqlite3_vfs*, int micros) { return g_default->xSleep(g_default, micros); }
int forward_current_time(sqlite3_vfs*, double* out) { return g_default->xCurrentTime(g_default, out); }
int forward_last_error(sqlite3_vfs*, int size, char* out) {
  return g_default->xGetLastError(g_default, size, out);
}
int forward_current_time_int64(sqlite3_vfs*, sqlite3_int64* out) {
  return g_default->xCurrentTimeInt64(g_default, out);
}

bool register_paced() {
  g_default = sqlite3_vfs_find(nullptr);
  if (g_default == nullptr || g_default->iVersion < 2) return false;
  g_methods = sqlite3_io_methods{};
  g_methods.iVersion = 3;
  g_methods.xClose = paced_close;
  g_methods.xRead = paced_read;
  g_methods.xWrite = paced_write;
  g_methods.xTruncate = paced_truncate;
  g_methods.xSync = paced_sync;
  g_methods.xFileSize = paced_file_size;
  g_methods.xLock = paced_lock;
  g_methods.xUnlock = paced_unlock;
  g_methods.xCheckReservedLock = paced_check_reserved;
  g_methods.xFileControl = paced_file_control;
  g_methods.xSectorSize = paced_sector_size;
  g_methods.xDeviceCharacteristics = paced_device_characteristics;
  g_methods.xShmMap = paced_shm_map;
  g_methods.xShmLock = paced_shm_lock;
  g_methods.xShmBarrier = paced_shm_barrier;
  g_methods.xShmUnmap = paced_shm_unmap;
  g_methods.xFetch = paced_fetch;
  g_methods.xUnfetch = paced_unfetch;
  g_vfs = sqlite3_vfs{};
  g_vfs.iVersion = 2;
  g_vfs.szOsFile = static_cast<int>(sizeof(PacedFile)) + g_default->szOsFile;
  g_vfs.mxPathname = g_default->mxPathname;
  g_vfs.zName = "balanced-paced";
  g_vfs.xOpen = paced_open;
  g_vfs.xDelete = forward_delete;
  g_vfs.xAccess = forward_access;
  g_vfs.xFullPathname = forward_full_pathname;
  g_vfs.xDlOpen = forward_dl_open;
  g_vfs.xDlError = forward_dl_error;
  g_vfs.xDlSym = forward_dl_sym;
  g_vfs.xDlClose = forward_dl_close;
  g_vfs.xRandomness = forward_randomness;
  g_vfs.xSleep = forward_sleep;
  g_vfs.xCurrentTime = forward_current_time;
  g_vfs.xGetLastError = forward_last_error;
  g_vfs.xCurrentTimeInt64 = forward_current_time_int64;
  return sqlite3_vfs_register(&g_vfs, 0) == SQLITE_OK;
}

}  // namespace

const char* paced_vfs() {
  static std::once_flag once;
  static bool registered = false;
  std::call_once(once, [] {
    configure_library();  // before registering initializes SQLite
    registered = register_paced();
  });
  return registered ? g_vfs.zName : nullptr;
}

uint64_t paced_writebacks() { return g_writebacks.load(std::memory_order_relaxed); }

bool commit_sync_near() {
  return g_commit_syncs.load(std::memory_order_acquire) > 0 ||
         steady_ns() - g_commit_sync_end_ns.load(std::memory_order_acquire) < commit_sync_near_ns;
}

CommitSyncMark::CommitSyncMark() { g_commit_syncs.fetch_add(1, std::memory_order_acq_rel); }

CommitSyncMark::~CommitSyncMark() {
  g_commit_sync_end_ns.store(steady_ns(), std::memory_order_release);
  g_commit_syncs.fetch_sub(1, std::memory_order_acq_rel);
}

}  // namespace balanced::storage::sqlite
