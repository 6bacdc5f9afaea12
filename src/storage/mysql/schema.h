// The MySQL schema: versioned migrations, each a list of re-runnable statements
// (schema_migrations records the versions applied). mysql_schema_version() and
// migrate_mysql() are declared in mysql_store.h.
#pragma once

#include "core/codes.h"
#include "storage/mysql/mysql_db.h"

namespace balanced::storage::mysql {

// The version the database says it has; 0 for a database never migrated.
Result<int> read_schema_version(Connection& c);

}  // namespace balanced::storage::mysql
