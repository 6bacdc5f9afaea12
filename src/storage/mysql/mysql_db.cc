#include "storage/mysql/mysql_db.h"

#include <atomic>

#include <errmsg.h>
#include <mysqld_error.h>

#include <charconv>
#include <mutex>

#include "net/url.h"
#include "service/secret_file.h"

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
                     " (expected mysql://user:password@host:port/database"
                     "[?tls=disabled|required|verify-ca|verify-identity&tls-ca=FILE])"};
  };
  auto parsed = net::parse_url(url);
  if (!parsed || parsed->scheme != "mysql") return bad("not a mysql:// URL");
  ConnectionConfig config;
  if (parsed->user.empty()) return bad("no user");
  config.user = std::move(parsed->user);
  config.password = std::move(parsed->password);
  std::string_view path = parsed->path;
  const size_t question = path.find('?');
  if (question != std::string_view::npos) {
    std::vector<std::pair<std::string, std::string>> parameters;
    if (!net::decode_form(path.substr(question + 1), parameters)) return bad("malformed query");
    for (auto& [name, value] : parameters) {
      if (name == "tls") {
        if (value == "disabled") {
          config.tls = TlsMode::disabled;
        } else if (value == "required") {
          config.tls = TlsMode::required;
        } else if (value == "verify-ca") {
          config.tls = TlsMode::verify_ca;
        } else if (value == "verify-identity") {
          config.tls = TlsMode::verify_identity;
        } else {
          return bad("tls must be disabled, required, verify-ca or verify-identity");
        }
      } else if (name == "tls-ca") {
        if (value.empty()) return bad("tls-ca names no file");
        config.tls_ca = std::move(value);
      } else {
        return bad("unknown parameter '" + name + "'");
      }
    }
    path = path.substr(0, question);
  }
  if ((config.tls == TlsMode::verify_ca || config.tls == TlsMode::verify_identity) && config.tls_ca.empty()) {
    return bad("tls=verify-ca and tls=verify-identity need tls-ca=FILE, the CA bundle to check against");
  }
  if (!config.tls_ca.empty() && config.tls == TlsMode::disabled) {
    return bad("tls-ca without tls=verify-ca or tls=verify-identity checks nothing");
  }
  if (path.size() < 2) return bad("no database");
  config.database = path.substr(1);
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

Flavor flavor_of(std::string_view server_version) {
  return server_version.find("MariaDB") != std::string_view::npos ? Flavor::mariadb : Flavor::mysql;
}

bool is_read_only(unsigned error_number) {
  switch (error_number) {
    case 1290:  // ER_OPTION_PREVENTS_STATEMENT: --read-only / --super-read-only (both)
    case 1792:  // ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION (both)
    case 1836:  // ER_READ_ONLY_MODE (both)
    case 1874:  // ER_INNODB_READ_ONLY (both)
      return true;
    default:
      return false;
  }
}

bool is_transient(unsigned error_number, Flavor flavor) {
  if (is_read_only(error_number)) return true;
  switch (error_number) {
    // The same number and meaning on both servers.
    case 1040:  // ER_CON_COUNT_ERROR
    case 1053:  // ER_SERVER_SHUTDOWN
    case 1062:  // ER_DUP_ENTRY
    case 1205:  // ER_LOCK_WAIT_TIMEOUT
    case 1213:  // ER_LOCK_DEADLOCK
    case 1317:  // ER_QUERY_INTERRUPTED (KILL QUERY)
    case CR_SERVER_GONE_ERROR:
    case CR_SERVER_LOST:
    case CR_CONNECTION_ERROR:
    case CR_CONN_HOST_ERROR:
    case CR_SERVER_LOST_EXTENDED:
    case CR_COMMANDS_OUT_OF_SYNC:
      return true;
    default:
      break;
  }
  if (flavor == Flavor::mariadb) {
    switch (error_number) {
      case 1927:  // ER_CONNECTION_KILLED
      case 1969:  // ER_STATEMENT_TIMEOUT (max_statement_time)
        return true;
      default:
        return false;
    }
  }
  switch (error_number) {
    case 3024:  // ER_QUERY_TIMEOUT (max_execution_time)
    case 3100:  // ER_RUN_HOOK_ERROR: group replication refused the commit (lost quorum)
    case 3101:  // ER_TRANSACTION_ROLLBACK_DURING_COMMIT: group replication certification
    case 3169:  // ER_SESSION_WAS_KILLED
    case 4031:  // ER_CLIENT_INTERACTION_TIMEOUT: disconnected for inactivity (8.0.24+)
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

namespace {
std::atomic<int64_t> opened_connections{0};
}  // namespace

int64_t connections_opened() { return opened_connections.load(std::memory_order_relaxed); }

Result<std::unique_ptr<Connection>> Connection::open(const ConnectionConfig& config) {
  library_init_once();
  MYSQL* mysql = mysql_init(nullptr);
  if (!mysql) return Error{Code::internal, "mysql_init: out of memory"};
  mysql_options(mysql, MYSQL_OPT_CONNECT_TIMEOUT, &config.connect_timeout_s);
  mysql_options(mysql, MYSQL_OPT_READ_TIMEOUT, &config.read_timeout_s);
  mysql_options(mysql, MYSQL_OPT_WRITE_TIMEOUT, &config.write_timeout_s);
  mysql_options(mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  const my_bool no = 0;
  const my_bool yes = 1;
  mysql_options(mysql, MYSQL_OPT_RECONNECT, &no);  // a lost connection is dropped, never resumed mid-transaction
  // Connector/C 3.3 checks the chain only when a CA is given, and the name only with
  // VERIFY_SERVER_CERT; ENFORCE refuses a server that does not offer TLS.
  if (config.tls != TlsMode::disabled) {
    mysql_options(mysql, MYSQL_OPT_SSL_ENFORCE, &yes);
    if (!config.tls_ca.empty()) mysql_options(mysql, MYSQL_OPT_SSL_CA, config.tls_ca.c_str());
    const my_bool check_name = config.tls == TlsMode::verify_identity ? 1 : 0;
    mysql_options(mysql, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &check_name);
  }
  std::string password = config.password;
  if (!config.password_file.empty()) {
    auto from_file = service::read_secret_file(config.password_file);
    if (!from_file) {
      mysql_close(mysql);
      return Error{Code::internal, "cannot read the password file " + config.password_file};
    }
    password = std::move(*from_file);
  }
  if (!mysql_real_connect(mysql, config.host.c_str(), config.user.c_str(),
                          password.c_str(), config.database.c_str(), config.port, nullptr,
                          CLIENT_FOUND_ROWS | CLIENT_MULTI_STATEMENTS)) {
    Error error{Code::unavailable, "cannot connect to MySQL at " + config.host + ":" +
                                       std::to_string(config.port) + ": " + mysql_error(mysql)};
    const unsigned number = mysql_errno(mysql);
    // Not yet connected: which server is unknown, so MySQL's meanings are assumed.
    if ((!is_transient(number, Flavor::mysql) && number < CR_MIN_ERROR) ||
        number == CR_SSL_CONNECTION_ERROR) {
      // Access denied, unknown database, a certificate or TLS refused: not going to heal.
      error.code = Code::internal;
    }
    mysql_close(mysql);
    return error;
  }
  const char* version = mysql_get_server_info(mysql);
  opened_connections.fetch_add(1, std::memory_order_relaxed);
  return std::unique_ptr<Connection>(new Connection(mysql, flavor_of(version ? version : "")));
}

Connection::~Connection() { mysql_close(mysql_); }

Status Connection::fail(std::string_view sql) {
  const unsigned number = mysql_errno(mysql_);
  last_error_ = number;
  if (number >= CR_MIN_ERROR && number <= CR_MAX_ERROR) broken_ = true;
  if (number == ER_SERVER_SHUTDOWN) broken_ = true;
  if (flavor_ == Flavor::mariadb && number == 1927) broken_ = true;  // ER_CONNECTION_KILLED
  if (flavor_ == Flavor::mysql && (number == 3169 || number == 4031)) broken_ = true;
  // A read-only server is an old primary or a replica: the next connection resolves the
  // host again and reaches the new primary.
  if (is_read_only(number)) broken_ = true;
  std::string statement(sql.substr(0, 80));
  return Status(is_transient(number, flavor_) ? Code::unavailable : Code::internal,
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
