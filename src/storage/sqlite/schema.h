// The ledger file's schema: versioned migrations (PRAGMA user_version) and the
// connection settings every writer applies.
#pragma once

#include <string>
#include <utility>

#include "core/codes.h"
#include "storage/sqlite/sqlite_db.h"

namespace balanced::storage::sqlite {

// The schema version this build reads and writes.
int schema_version_of_build();
// The version the file says it has.
Result<int> schema_version(Connection& connection);
// Applies the pending migrations, each in its own transaction; returns the version before
// and after. Fails on a file newer than this build.
Result<std::pair<int, int>> run_migrations(Connection& connection);
// Page size, WAL, synchronous FULL (every commit fsynced) or NORMAL, cache.
Status configure(Connection& connection, bool synchronous_full);

}  // namespace balanced::storage::sqlite
