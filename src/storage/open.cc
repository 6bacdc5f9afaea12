#include "storage/open.h"

#include "storage/mysql/audit_seal_job.h"

#include <filesystem>

#include "service/secret_file.h"

namespace balanced::storage {

namespace {

constexpr std::string_view kSqlite = "sqlite:";

Error bad_url(const std::string& url) {
  return Error{Code::invalid_request, "--db " + mysql::redact_url(url) +
                                          ": expected sqlite:PATH or "
                                          "mysql://user:password@host:port/database"};
}

}  // namespace

Result<mysql::ConnectionConfig> mysql_connection(const std::string& url,
                                                 const std::string& password_file) {
  auto config = mysql::parse_url(url);
  if (!config.ok() || password_file.empty()) return config;
  // Read now, so that a missing file stops the start; read again for every connection.
  if (!service::read_secret_file(password_file)) {
    return Error{Code::invalid_request, "cannot read the password file " + password_file};
  }
  config.value().password_file = password_file;
  return config;
}

Result<OpenedStore> open_store(StoreSettings settings, observe::Registry* registry) {
  if (settings.url.starts_with(kSqlite)) {
    settings.sqlite.path = settings.url.substr(kSqlite.size());
    if (settings.sqlite.path.empty()) return bad_url(settings.url);
    const auto parent = std::filesystem::path(settings.sqlite.path).parent_path();
    std::error_code ignored;
    if (!parent.empty() && !settings.sqlite.read_only) {
      std::filesystem::create_directories(parent, ignored);
    }
    auto store = open_sqlite_store(settings.sqlite);
    if (!store.ok()) return store.error();
    return OpenedStore{std::move(store.value()), false, nullptr};
  }
  if (settings.url.starts_with("mysql://")) {
    auto connection = mysql_connection(settings.url, settings.password_file);
    if (!connection.ok()) return connection.error();
    settings.mysql.connection = std::move(connection.value());
    auto store = open_mysql_store(settings.mysql);
    if (!store.ok()) return store.error();
    auto job = std::make_unique<AuditSealJob>(*store.value(), registry);
    return OpenedStore{std::move(store.value()), true, std::move(job)};
  }
  return bad_url(settings.url);
}

Result<std::pair<int, int>> migrate_store(const std::string& url, const std::string& password_file) {
  if (url.starts_with(kSqlite)) {
    if (url.size() == kSqlite.size()) return bad_url(url);
    return migrate_sqlite(url.substr(kSqlite.size()));
  }
  if (url.starts_with("mysql://")) {
    auto connection = mysql_connection(url, password_file);
    if (!connection.ok()) return connection.error();
    return migrate_mysql(connection.value());
  }
  return bad_url(url);
}

}  // namespace balanced::storage
