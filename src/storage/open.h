// Opens the store a --db URL names: sqlite:PATH or mysql://user:pass@host:port/db.
// Shared by balanced and balancectl so that both read the URL the same way.
#pragma once

#include <memory>
#include <string>

#include "jobs/job.h"
#include "observe/registry.h"
#include "storage/mysql/mysql_store.h"
#include "storage/sqlite/sqlite_store.h"

namespace balanced::storage {

struct StoreSettings {
  std::string url;
  // A file whose content (trailing newline dropped) replaces the URL's password: a
  // mounted Kubernetes secret, so the password never appears in an environment dump.
  std::string password_file;
  SqliteOptions sqlite;  // path filled from the URL
  MysqlOptions mysql;    // connection filled from the URL
};

struct OpenedStore {
  std::unique_ptr<Store> store;
  // True when other replicas may share the database (MySQL): then `singleton_job` must
  // run on one replica at a time, elected by a lease.
  bool shared = false;
  std::unique_ptr<jobs::Job> singleton_job;  // null when the store needs none
};

// The MySQL connection a URL and password file describe.
Result<mysql::ConnectionConfig> mysql_connection(const std::string& url,
                                                 const std::string& password_file);
// `registry` (may be null, must outlive the store) receives the store's job metrics.
Result<OpenedStore> open_store(StoreSettings settings, observe::Registry* registry = nullptr);
// Applies pending migrations; returns the schema version before and after.
Result<std::pair<int, int>> migrate_store(const std::string& url, const std::string& password_file);

}  // namespace balanced::storage
