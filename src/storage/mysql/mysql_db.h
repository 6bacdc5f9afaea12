// A thin, owning wrapper over MariaDB Connector/C (libmariadb): connections, text
// queries, result rows, error classification and a bounded connection pool.
//
// Statements are built as text with every string value escaped by the server's own
// escaping (mysql_real_escape_string) and every number formatted by us: batches write
// multi-row statements whose row count varies, which a prepared statement cannot.
#pragma once

#include <mysql.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/codes.h"
#include "core/mutex.h"

namespace balanced::storage::mysql {

// How a connection is secured (DESIGN.md section 12), by MariaDB Connector/C's options.
enum class TlsMode {
  disabled,        // plain TCP (the default)
  required,        // TLS, the certificate not checked
  verify_ca,       // TLS, the certificate chains to tls_ca
  verify_identity  // and names the host dialed (the production overlay's choice)
};

struct ConnectionConfig {
  std::string host = "127.0.0.1";
  unsigned port = 3306;
  std::string user;
  std::string password;
  // When set, read again for every new connection: a rotated password needs no restart.
  std::string password_file;
  std::string database;
  TlsMode tls = TlsMode::disabled;
  std::string tls_ca;  // PEM file; required by verify_ca and verify_identity
  // Bounds on every wait for the server, in seconds (libmariadb's unit).
  unsigned connect_timeout_s = 3;
  unsigned read_timeout_s = 10;
  unsigned write_timeout_s = 10;
};

// Parses mysql://user[:password]@host[:port]/database[?tls=MODE&tls-ca=FILE], MODE one of
// disabled, required, verify-ca, verify-identity. Percent-escapes in the user, password and
// query are decoded. The password may come separately (a Kubernetes secret file).
Result<ConnectionConfig> parse_url(std::string_view url);
// The URL with the password replaced by "***", for logs.
std::string redact_url(std::string_view url);

// Which server a connection reached: MariaDB and MySQL share the error numbers below
// about 1880 and give different meanings to many above.
enum class Flavor { mariadb, mysql };
// From the server's version string ("10.11.6-MariaDB-...", "8.0.36").
Flavor flavor_of(std::string_view server_version);

// True for errors after which the same statement may succeed when retried on a fresh
// connection: deadlock, lock wait timeout, lost or refused connection, a killed query or
// connection, a statement timeout, server shutting down or read-only (a failover in
// progress: MariaDB's and MySQL 8's codes both), duplicate key (another writer committed
// the same id or account first; the retry sees it).
bool is_transient(unsigned error_number, Flavor flavor);
// True for the errors a read-only server answers a write with (an old primary after a
// failover, a replica an endpoint still points at): its connection is dropped, so that the
// next one resolves the host again.
// Connections this process opened so far. What a store keeps of the database between
// batches (the velocity windows) is forgotten when a new one opens: it may reach another
// server (a failover), whose sequences need not continue the old one's.
int64_t connections_opened();

bool is_read_only(unsigned error_number);
bool is_duplicate_key(unsigned error_number);
bool is_missing_table(unsigned error_number);

class Rows {
 public:
  explicit Rows(MYSQL_RES* result) : result_(result) {}
  Rows(Rows&& other) noexcept : result_(other.result_), row_(other.row_), lengths_(other.lengths_) {
    other.result_ = nullptr;
  }
  Rows& operator=(Rows&&) = delete;
  ~Rows() {
    if (result_) mysql_free_result(result_);
  }
  bool next();
  bool null(unsigned column) const { return row_[column] == nullptr; }
  std::string_view view(unsigned column) const {
    return row_[column] ? std::string_view(row_[column], lengths_[column]) : std::string_view();
  }
  std::string text(unsigned column) const { return std::string(view(column)); }
  int64_t int64(unsigned column) const;
  uint64_t size() const { return result_ ? mysql_num_rows(result_) : 0; }

 private:
  MYSQL_RES* result_ = nullptr;
  MYSQL_ROW row_ = nullptr;
  unsigned long* lengths_ = nullptr;
};

class Connection {
 public:
  static Result<std::unique_ptr<Connection>> open(const ConnectionConfig& config);
  Flavor flavor() const { return flavor_; }
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs a statement that returns no rows.
  Status exec(std::string_view sql);
  struct StatementResult {
    uint64_t affected_rows = 0;
    uint64_t insert_id = 0;
  };
  // Runs several statements separated by ';' in one round trip; stops at the first that
  // fails (the error is that statement's). One result per statement, in order.
  Result<std::vector<StatementResult>> exec_many(std::string_view sql);
  // Runs a statement and fetches all its rows.
  Result<Rows> query(std::string_view sql);
  // Runs a statement and streams its rows to `row`, without holding them all in memory.
  template <typename RowVisitor>
  Status for_each_row(std::string_view sql, RowVisitor&& row) {
    if (mysql_real_query(mysql_, sql.data(), sql.size()) != 0) return fail(sql);
    Rows rows(mysql_use_result(mysql_));
    while (rows.next()) row(static_cast<const Rows&>(rows));
    if (mysql_errno(mysql_) != 0) return fail(sql);
    return Status();
  }
  uint64_t last_insert_id() { return mysql_insert_id(mysql_); }
  uint64_t affected_rows() { return mysql_affected_rows(mysql_); }
  // Appends `value` as a quoted, escaped SQL string literal.
  void append_quoted(std::string& sql, std::string_view value);
  // Appends `bytes` as a hexadecimal literal (X'..'), for binary columns.
  static void append_hex(std::string& sql, std::string_view bytes);
  // After a connection-level error the connection is not returned to its pool.
  bool broken() const { return broken_; }
  // The server's error number of the last failed statement (0 if none failed yet).
  unsigned last_error() const { return last_error_; }
  // Drops the connection when it goes back to its pool (its state is unknown).
  void discard() { broken_ = true; }

 private:
  Connection(MYSQL* mysql, Flavor flavor) : mysql_(mysql), flavor_(flavor) {}
  Status fail(std::string_view sql);
  MYSQL* mysql_;
  Flavor flavor_;
  bool broken_ = false;
  unsigned last_error_ = 0;
};

// Connections opened on demand up to connections_max; a caller waits at most wait_max
// for a free one, then gets Code::unavailable.
class Pool {
 public:
  Pool(ConnectionConfig config, size_t connections_max, std::chrono::milliseconds wait_max,
       std::vector<std::string> session_sql);
  ~Pool();

  class Lease {
   public:
    Lease(Pool* pool, std::unique_ptr<Connection> connection)
        : pool_(pool), connection_(std::move(connection)) {}
    Lease(Lease&&) = default;
    ~Lease() {
      if (pool_ && connection_) pool_->release(std::move(connection_));
    }
    Connection* operator->() { return connection_.get(); }
    Connection& operator*() { return *connection_; }

   private:
    Pool* pool_;
    std::unique_ptr<Connection> connection_;
  };

  Result<Lease> acquire();
  const ConnectionConfig& config() const { return config_; }

 private:
  void release(std::unique_ptr<Connection> connection);
  const ConnectionConfig config_;
  const size_t connections_max_;
  const std::chrono::milliseconds wait_max_;
  const std::vector<std::string> session_sql_;  // run on every new connection
  Mutex mutex_;
  std::condition_variable freed_;
  std::vector<std::unique_ptr<Connection>> idle_ GUARDED_BY(mutex_);
  size_t open_ GUARDED_BY(mutex_) = 0;
};

}  // namespace balanced::storage::mysql
