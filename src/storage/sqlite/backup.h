// Online backup and restore of a SQLite ledger (the ledger file and its commit log, see
// sqlite_store.h).
//
// backup_sqlite() copies, while balanced keeps committing, first the commit log and then
// the ledger file (the log's segments as far as written, a torn last record cut off when
// the copy is opened; the ledger by SQLite's online backup API, one consistent snapshot),
// then opens the copy as a store, which materializes every logged batch past the copied
// watermark, and removes the copied log. The result is ONE self-contained ledger file
// holding every batch that was durable when the backup began: those still only in the
// commit log included (a copy of the ledger file alone would lose them). Why this order
// is enough: every batch acknowledged before the backup began is in the log copy, or
// was materialized and its segment released before it, and then it is in the ledger
// copy, whose watermark can only be later.
#pragma once

#include <string>

#include "core/codes.h"

namespace balanced::storage {

struct BackupReport {
  int64_t batches_recovered = 0;  // batches that were only in the commit log
};

// `out` must not exist. Safe while balanced serves `ledger`.
Result<BackupReport> backup_sqlite(const std::string& ledger, const std::string& out);
// Puts a backup in place as the ledger `ledger`, which must not exist (nor its log).
Status restore_sqlite(const std::string& backup, const std::string& ledger);

}  // namespace balanced::storage
