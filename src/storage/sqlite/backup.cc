#include "storage/sqlite/backup.h"

#include <sqlite3.h>

#include <filesystem>

#include "storage/sqlite/sqlite_store.h"

namespace balanced::storage {
namespace {

// Copies the database at `from` into a new file `to`, as one snapshot.
Status copy_database(const std::string& from, const std::string& to) {
  sqlite3* source = nullptr;
  sqlite3* target = nullptr;
  auto close_both = [&] {
    sqlite3_close(source);
    sqlite3_close(target);
  };
  if (sqlite3_open_v2(from.c_str(), &source, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    const std::string error = sqlite3_errmsg(source);
    close_both();
    return Status(Code::unavailable, "cannot open " + from + ": " + error);
  }
  sqlite3_busy_timeout(source, 5000);
  if (sqlite3_open_v2(to.c_str(), &target, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
    close_both();
    return Status(Code::unavailable, "cannot create " + to);
  }
  sqlite3_backup* backup = sqlite3_backup_init(target, "main", source, "main");
  if (backup == nullptr) {
    const std::string error = sqlite3_errmsg(target);
    close_both();
    return Status(Code::unavailable, "backup of " + from + ": " + error);
  }
  // -1: every page in one step, under one read transaction of the source: a snapshot.
  int rc = SQLITE_OK;
  for (int attempt = 0; attempt < 100; ++attempt) {
    rc = sqlite3_backup_step(backup, -1);
    if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED) break;
    sqlite3_sleep(50);
  }
  sqlite3_backup_finish(backup);
  close_both();
  if (rc != SQLITE_DONE) return Status(Code::unavailable, "backup of " + from + " stopped: " + sqlite3_errstr(rc));
  return {};
}

void remove_database(const std::string& path) {
  std::error_code ignored;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) std::filesystem::remove(path + suffix, ignored);
}

}  // namespace

Result<BackupReport> backup_sqlite(const std::string& ledger, const std::string& out) {
  if (!std::filesystem::exists(ledger)) return Error{Code::invalid_request, "no ledger at " + ledger};
  if (std::filesystem::exists(out)) return Error{Code::invalid_request, out + " exists already"};
  const std::string out_log = commit_log_path(out);
  CommitLog::remove(out_log);
  // The log first: see backup.h for why.
  if (auto status = CommitLog::copy(commit_log_path(ledger), out_log); !status.ok()) {
    CommitLog::remove(out_log);
    return status.error();
  }
  if (auto status = copy_database(ledger, out); !status.ok()) {
    remove_database(out);
    CommitLog::remove(out_log);
    return status.error();
  }
  // Opening the copy recovers: the logged batches past its watermark are materialized and
  // the log truncated. Closing it leaves one file.
  {
    SqliteOptions options;
    options.path = out;
    options.migrate = false;
    auto store = open_sqlite_store(options);
    if (!store.ok()) {
      remove_database(out);
      CommitLog::remove(out_log);
      return store.error();
    }
  }
  CommitLog::remove(out_log);
  // Fold the copy's write-ahead log into it and leave WAL mode: one file, nothing beside.
  sqlite3* copy = nullptr;
  const bool folded = sqlite3_open_v2(out.c_str(), &copy, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK &&
                      sqlite3_exec(copy, "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE;", nullptr,
                                   nullptr, nullptr) == SQLITE_OK;
  sqlite3_close(copy);
  if (!folded || std::filesystem::exists(out + "-wal")) {
    remove_database(out);
    return Error{Code::unavailable, "cannot fold the write-ahead log into " + out};
  }
  std::error_code ignored;
  std::filesystem::remove(out + ".lock", ignored);  // the owner lock of the recovery open
  return BackupReport{};
}

Status restore_sqlite(const std::string& backup, const std::string& ledger) {
  if (!std::filesystem::exists(backup)) return Status(Code::invalid_request, "no backup at " + backup);
  if (std::filesystem::exists(ledger) || std::filesystem::exists(commit_log_path(ledger))) {
    return Status(Code::invalid_request, ledger + " exists: restore only into a new path (move the old ledger aside)");
  }
  const auto parent = std::filesystem::path(ledger).parent_path();
  std::error_code ignored;
  if (!parent.empty()) std::filesystem::create_directories(parent, ignored);
  if (auto status = copy_database(backup, ledger); !status.ok()) {
    remove_database(ledger);
    return status;
  }
  // Open once, as balanced will: the schema is checked and an empty log created.
  SqliteOptions options;
  options.path = ledger;
  options.migrate = false;
  auto store = open_sqlite_store(options);
  if (!store.ok()) {
    remove_database(ledger);
    CommitLog::remove(commit_log_path(ledger));
    return store.status();
  }
  return {};
}

}  // namespace balanced::storage
