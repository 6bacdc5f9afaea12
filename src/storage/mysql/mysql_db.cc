#include "storage/mysql/mysql_db.h"

#include <errmsg.h>
#include <mysqld_error.h>

#include <charconv>
#include <mutex>

#include "net/url.h"

namespace balanced::storage::mysql {

namespace {

void library_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { mysql_library_init(0, nullptr, nullptr); });
}

constexpr std::string_view kScheme = "mysql://";

}  // namespace

Result<ConnectionConfig> parse_url(std::string_view url) {
  auto bad = [&](std::string_view why) {
    return Error{Code::invalid_request,
                 "--db " + redact_url(url) + ": " + std::string(why) +
                     " (expected mysql://user:password@host:port/database)"};
  };
  auto parsed = net::parse_url(url);
  if (!parsed || parsed->scheme != "mysql") return bad("not a mysql:// URL");
  ConnectionConfig config;
  if (parsed->user.empty()) return bad("no user");
  config.user = std::move(parsed->user);
  config.password = std::move(parsed->password);
  if (parsed->path.size() < 2) return bad("no database");
  config.database = parsed->path.substr(1);
  if (config.database.find_first_of("/?#`'\"") != std::string::npos) {
    return bad("invalid database name");
  }
  if (parsed->authority.find(':') == std::string::npos) {
    if (parsed->authority.empty()) return bad("no host");
    config.host = parsed->authority;
    return config;
  }
  auto host_port = net::parse_host_port(parsed->authority);
  if (!host_port) return bad("invalid port");
  if (host_port->host.empty()) return bad("no host");
  config.host = std::move(host_port->host);
  config.port = host_port->port;
  return config;
}

std::string redact_url(std::string_view url) {
  if (!url.starts_with(kScheme)) return std::string(url);
  const size_t at = url.rfind('@');
  const size_t colon = url.find(':', kScheme.size());
  if (at == std::string_view::npos || colon == std::string_view::npos || colon > at) {
    return std::string(url);
  }
  return std::string(url.substr(0, colon + 1)) + "***" + std::string(url.substr(at));
}

bool is_duplicate_key(unsigned error_number) { return error_number == ER_DUP_ENTRY; }

bool is_missing_table(unsigned error_number) { return error_number == ER_NO_SUCH_TABLE; }

bool is_transient(unsigned error_number) {
  switch (error_number) {
    case ER_LOCK_DEADLOCK:
    case ER_LOCK_WAIT_TIMEOUT:
    case ER_DUP_ENTRY:
    case ER_SERVER_SHUTDOWN:
    case ER_CONNECTION_KILLED:
    case ER_OPTION_PREVENTS_STATEMENT:  // read-only during a failover
    case ER_CON_COUNT_ERROR:
    case ER_QUERY_INTERRUPTED:
    case CR_SERVER_GONE_ERROR:
    case CR_SERVER_LOST:
    case CR_CONNECTION_ERROR:
    case CR_CONN_HOST_ERROR:
    case CR_SERVER_LOST_EXTENDED:
    case CR_COMMANDS_OUT_OF_SYNC:
      return true;
    default:
      return false;
  }
}

bool Rows::next() {
  if (!result_) return false;
  row_ = mysql_fetch_row(result_);
  if (!row_) return false;
  lengths_ = mysql_fetch_lengths(result_);
  return true;
}

int64_t Rows::int64(unsigned column) const {
  const std::string_view text = view(column);
  int64_t value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

Result<std::unique_ptr<Connection>> Connection::open(const ConnectionConfig& config) {
  library_init_once();
  MYSQL* mysql = mysql_init(nullptr);
  if (!mysql) return Error{Code::internal, "mysql_init: out of memory"};
  mysql_options(mysql, MYSQL_OPT_CONNECT_TIMEOUT, &config.connect_timeout_s);
  mysql_options(mysql, MYSQL_OPT_READ_TIMEOUT, &config.read_timeout_s);
  mysql_options(mysql, MYSQL_OPT_WRITE_TIMEOUT, &config.write_timeout_s);
  mysql_options(mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  const my_bool no = 0;
  mysql_options(mysql, MYSQL_OPT_RECONNECT, &no);  // a lost connection is dropped, never resumed mid-transaction
  if (!mysql_real_connect(mysql, config.host.c_str(), config.user.c_str(),
                          config.password.c_str(), config.database.c_str(), config.port, nullptr,
                          CLIENT_FOUND_ROWS | CLIENT_MULTI_STATEMENTS)) {
    Error error{Code::unavailable, "cannot connect to MySQL at " + config.host + ":" +
                                       std::to_string(config.port) + ": " + mysql_error(mysql)};
    if (!is_transient(mysql_errno(mysql)) && mysql_errno(mysql) < CR_MIN_ERROR) {
      error.code = Code::internal;  // access denied, unknown database: not going to heal
    }
    mysql_close(mysql);
    return error;
  }
  return std::unique_ptr<Connection>(new Connection(mysql));
}

Connection::~Connection() { mysql_close(mysql_); }

Status Connection::fail(std::string_view sql) {
  const unsigned number = mysql_errno(mysql_);
  last_error_ = number;
  if (number >= CR_MIN_ERROR && number <= CR_MAX_ERROR) broken_ = true;
  if (number == ER_SERVER_SHUTDOWN || number == ER_CONNECTION_KILLED) broken_ = true;
  std::string statement(sql.substr(0, 80));
  return Status(is_transient(number) ? Code::unavailable : Code::internal,
                "MySQL error " + std::to_string(number) + ": " + mysql_error(mysql_) +
                    " (in: " + statement + (sql.size() > 80 ? "...)" : ")"));
}

Status Connection::exec(std::string_view sql) {
  if (mysql_real_query(mysql_, sql.data(), sql.size()) != 0) return fail(sql);
  // A statement that unexpectedly returns rows must not leave them unread.
  if (MYSQL_RES* result = mysql_store_result(mysql_)) mysql_free_result(result);
  return Status();
}

Result<std::vector<Connection::StatementResult>> Connection::exec_many(std::string_view sql) {
  if (mysql_real_query(mysql_, sql.data(), sql.size()) != 0) return fail(sql).error();
  std::vector<StatementResult> results;
  for (;;) {
    if (MYSQL_RES* result = mysql_store_result(mysql_)) mysql_free_result(result);
    results.push_back({mysql_affected_rows(mysql_), mysql_insert_id(mysql_)});
    const int next = mysql_next_result(mysql_);
    if (next < 0) return results;                  // no more statements
    if (next > 0) return fail(sql).error();        // the next statement failed
  }
}

Result<Rows> Connection::query(std::string_view sql) {
  if (mysql_real_query(mysql_, sql.data(), sql.size()) != 0) return fail(sql).error();
  MYSQL_RES* result = mysql_store_result(mysql_);
  if (!result && mysql_errno(mysql_) != 0) return fail(sql).error();
  return Rows(result);
}

void Connection::append_quoted(std::string& sql, std::string_view value) {
  const size_t start = sql.size();
  sql.resize(start + value.size() * 2 + 3);
  sql[start] = '\'';
  const unsigned long written =
      mysql_real_escape_string(mysql_, sql.data() + start + 1, value.data(), value.size());
  sql[start + 1 + written] = '\'';
  sql.resize(start + written + 2);
}

void Connection::append_hex(std::string& sql, std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  sql += "X'";
  for (unsigned char byte : bytes) {
    sql.push_back(kDigits[byte >> 4]);
    sql.push_back(kDigits[byte & 0x0f]);
  }
  sql.push_back('\'');
}

Pool::Pool(ConnectionConfig config, size_t connections_max, std::chrono::milliseconds wait_max,
           std::vector<std::string> session_sql)
    : config_(std::move(config)),
      connections_max_(connections_max),
      wait_max_(wait_max),
      session_sql_(std::move(session_sql)) {}

Pool::~Pool() = default;

Result<Pool::Lease> Pool::acquire() {
  {
    MutexLock lock(mutex_);
    const bool ready = lock.wait_for(freed_, wait_max_, [&]() REQUIRES(mutex_) {
      return !idle_.empty() || open_ < connections_max_;
    });
    if (!ready) {
      return Error{Code::unavailable, "no free MySQL connection within " +
                                          std::to_string(wait_max_.count()) + " ms"};
    }
    if (!idle_.empty()) {
      auto connection = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(connection));
    }
    ++open_;  // reserve the slot, then connect without holding the lock
  }
  auto opened = Connection::open(config_);
  for (const auto& statement : session_sql_) {
    if (!opened.ok()) break;
    if (auto s = opened.value()->exec(statement); !s.ok()) opened = s.error();
  }
  if (!opened.ok()) {
    {
      MutexLock lock(mutex_);
      --open_;
    }
    freed_.notify_one();
    return opened.error();
  }
  return Lease(this, std::move(opened.value()));
}

void Pool::release(std::unique_ptr<Connection> connection) {
  {
    MutexLock lock(mutex_);
    if (connection->broken()) {
      --open_;
    } else {
      idle_.push_back(std::move(connection));
    }
  }
  freed_.notify_one();
}

}  // namespace balanced::storage::mysql
