// Thin RAII wrappers over the SQLite C API: a connection, a prepared statement, and a
// scope guard that resets a statement after each use. Errors are Status values.
#pragma once

#include <sqlite3.h>

#include <mutex>
#include <string>
#include <string_view>

#include "core/codes.h"

namespace balanced::storage::sqlite {

// Library-wide settings, applied once, before SQLite initializes (the first connection or
// VFS registration; later they cannot change). No memory statistics: with them SQLite takes
// one process-wide mutex around every allocation and free it makes, which the
// materializer, the committer and every reader then contend for (futex waits in
// sqlite3Malloc in the materializer's profile).
inline void configure_library() {
  static std::once_flag once;
  std::call_once(once, [] { (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
}

struct ConnectionOptions {
  int busy_timeout_ms = 5000;
  const char* vfs = nullptr;  // a registered VFS's name; null: the default
};

inline Error sqlite_error(sqlite3* db, int rc, std::string_view what) {
  const int primary = rc & 0xff;
  // Busy, locked, I/O, full disk: transient from the ledger's point of view.
  const bool transient = primary == SQLITE_BUSY || primary == SQLITE_LOCKED ||
                         primary == SQLITE_IOERR || primary == SQLITE_FULL ||
                         primary == SQLITE_CANTOPEN || primary == SQLITE_PROTOCOL;
  std::string detail = std::string(what) + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  return Error{transient ? Code::unavailable : Code::internal, std::move(detail)};
}

class Connection {
 public:
  Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() {
    if (db_ != nullptr) sqlite3_close_v2(db_);
  }

  Status open(const std::string& path, int flags, const ConnectionOptions& options) {
    configure_library();
    const int rc = sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, options.vfs);
    if (rc != SQLITE_OK) return Status(sqlite_error(db_, rc, "open " + path));
    sqlite3_busy_timeout(db_, options.busy_timeout_ms);
    sqlite3_extended_result_codes(db_, 1);
    return {};
  }

  Status exec(const std::string& sql) {
    char* message = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
    if (rc != SQLITE_OK) {
      Error error = sqlite_error(db_, rc, sql.substr(0, 60));
      sqlite3_free(message);
      return Status(std::move(error));
    }
    return {};
  }

  sqlite3* get() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

// A prepared statement, reset after each use by Use.
class Statement {
 public:
  Statement() = default;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() {
    if (stmt_ != nullptr) sqlite3_finalize(stmt_);
  }

  Status prepare(Connection& connection, const std::string& sql) {
    db_ = connection.get();
    const int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
    if (rc != SQLITE_OK) return Status(sqlite_error(db_, rc, "prepare " + sql.substr(0, 60)));
    return {};
  }

  // REQUIRES: the bound text outlives the statement's next reset().
  void bind(int index, int64_t value) { sqlite3_bind_int64(stmt_, index, value); }
  // An empty view binds '' (an empty blob), never NULL: SQLite binds NULL for a null
  // pointer, which a default std::string_view holds (`?1 = ''` was then never true).
  void bind(int index, std::string_view text) {
    sqlite3_bind_text(stmt_, index, text.data() != nullptr ? text.data() : "", static_cast<int>(text.size()),
                      SQLITE_STATIC);
  }
  void bind_blob(int index, std::string_view bytes) {
    sqlite3_bind_blob(stmt_, index, bytes.data() != nullptr ? bytes.data() : "", static_cast<int>(bytes.size()),
                      SQLITE_STATIC);
  }
  void bind_null(int index) { sqlite3_bind_null(stmt_, index); }

  // SQLITE_ROW, SQLITE_DONE or an error code.
  int step() { return sqlite3_step(stmt_); }
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  Error error(int rc, std::string_view what) const { return sqlite_error(db_, rc, what); }

  int64_t int64(int column) const { return sqlite3_column_int64(stmt_, column); }
  bool is_null(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
  std::string text(int column) const { return std::string(text_view(column)); }
  // The text in SQLite's own buffer: valid until the next step(), reset() or another
  // read of the same column as another type.
  std::string_view text_view(int column) const {
    const auto* data = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
    return data ? std::string_view(data, static_cast<size_t>(sqlite3_column_bytes(stmt_, column)))
                : std::string_view();
  }
  std::string blob(int column) const {
    const auto* data = static_cast<const char*>(sqlite3_column_blob(stmt_, column));
    return data ? std::string(data, static_cast<size_t>(sqlite3_column_bytes(stmt_, column)))
                : std::string();
  }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

// Resets a statement when a use of it ends, however it ends.
class Use {
 public:
  explicit Use(Statement& statement) : statement_(statement) {}
  ~Use() { statement_.reset(); }
  Statement* operator->() { return &statement_; }
  Statement& operator*() { return statement_; }

 private:
  Statement& statement_;
};

}  // namespace balanced::storage::sqlite
