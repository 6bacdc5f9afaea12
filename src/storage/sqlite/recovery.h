// Recovery at open: every batch of the commit log past the ledger file's watermark is
// materialized (after kill -9 or a power cut), and the counters the committer goes on
// from are read back.
#pragma once

#include <cstdint>
#include <string>

#include "core/codes.h"
#include "storage/sqlite/commit_log.h"
#include "storage/sqlite/ledger_writer.h"

namespace balanced::storage::sqlite {

struct Recovered {
  int64_t applied_batch = 0;  // the ledger file's watermark after recovery
  int64_t next_batch = 1;
  int64_t next_sequence = 1;
  int64_t next_log_id = 1;
  int64_t next_event_id = 1;
  int64_t last_created_at_ms = 0;  // the latest transaction's commit time
};

// Opens `log` (the commit log beside `ledger_path`) for appends, materializing through
// `ledger` what it holds past the watermark. A commit log of the first design (one
// SQLite file) is converted on the way.
Result<Recovered> recover(const std::string& ledger_path, const ConnectionOptions& options,
                          bool synchronous_full, LedgerWriter& ledger, CommitLog& log);

}  // namespace balanced::storage::sqlite
