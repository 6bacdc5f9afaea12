#include "storage/sqlite/recovery.h"

#include <algorithm>
#include <filesystem>
#include <utility>
#include <vector>

#include "observe/log.h"
#include "storage/sqlite/journal_codec.h"

namespace balanced::storage::sqlite {
namespace {

// Batches materialized per ledger transaction during recovery, at most.
constexpr size_t kRecoveryChunkBatchesMax = 1000;

// Decoded batches waiting to be materialized together.
class Chunk {
 public:
  explicit Chunk(LedgerWriter& ledger) : ledger_(ledger) {}

  Status add(int64_t batch, std::string_view payload, const std::string& where) {
    auto effects = decode_journal_record(payload);
    if (!effects.ok()) return Status(Code::internal, where + ": " + effects.error().detail);
    batches_.emplace_back(batch, std::move(effects.value()));
    if (batches_.size() >= kRecoveryChunkBatchesMax) return flush();
    return {};
  }

  // Materializes what it holds and empties it.
  Status flush() {
    std::vector<std::pair<int64_t, const core::BatchEffects*>> view;
    for (const auto& [batch, effects] : batches_) view.emplace_back(batch, &effects);
    if (auto s = ledger_.materialize(view); !s.ok()) return s;
    batches_.clear();
    return {};
  }

 private:
  LedgerWriter& ledger_;
  std::vector<std::pair<int64_t, core::BatchEffects>> batches_;
};

// A commit log of the first design (one SQLite file at the log's path): its batches
// past the watermark are materialized, then the file goes, for the directory to take
// its place.
Status recover_sqlite_commit_log(const std::string& ledger_path, const ConnectionOptions& options,
                                 LedgerWriter& ledger, int64_t applied, int64_t& last_logged) {
  const std::string path = commit_log_path(ledger_path);
  if (!std::filesystem::is_regular_file(path)) return {};
  {
    Connection old;
    if (auto s = old.open(path, SQLITE_OPEN_READWRITE, options); !s.ok()) return s;
    Statement select;
    if (auto s = select.prepare(old, "SELECT batch, effects FROM commit_log WHERE batch > ?1 ORDER BY batch");
        !s.ok()) {
      return s;
    }
    select.bind(1, applied);
    Chunk chunk(ledger);
    int rc = SQLITE_ROW;
    while ((rc = select.step()) == SQLITE_ROW) {
      last_logged = select.int64(0);
      if (auto s = chunk.add(last_logged, select.blob(1), path); !s.ok()) return s;
    }
    if (rc != SQLITE_DONE) return Status(select.error(rc, "read " + path));
    if (auto s = chunk.flush(); !s.ok()) return s;
  }
  std::error_code ignored;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) std::filesystem::remove(path + suffix, ignored);
  observe::log(observe::LogLevel::info, "converted the commit log to segment files", {{"path", path}});
  return {};
}

Result<int64_t> single_integer(Connection& db, const std::string& sql) {
  Statement s;
  if (auto status = s.prepare(db, sql); !status.ok()) return status.error();
  const int rc = s.step();
  if (rc != SQLITE_ROW) return s.error(rc, sql);
  return s.int64(0);
}

}  // namespace

Result<Recovered> recover(const std::string& ledger_path, const ConnectionOptions& options,
                          bool synchronous_full, LedgerWriter& ledger, CommitLog& log) {
  auto applied = ledger.applied_batch();
  if (!applied.ok()) return applied.error();
  int64_t last_logged = 0;
  if (auto s = recover_sqlite_commit_log(ledger_path, options, ledger, applied.value(), last_logged);
      !s.ok()) {
    return s.error();
  }
  applied = ledger.applied_batch();
  if (!applied.ok()) return applied.error();
  Chunk chunk(ledger);
  int64_t recovered = 0;
  auto visit = [&](int64_t batch, std::string_view payload) -> Status {
    ++recovered;
    return chunk.add(batch, payload, "commit log batch " + std::to_string(batch));
  };
  if (auto s = log.open(commit_log_path(ledger_path), synchronous_full, applied.value(), visit); !s.ok()) {
    return s.error();
  }
  if (auto s = chunk.flush(); !s.ok()) return s.error();
  if (recovered > 0) {
    observe::log(observe::LogLevel::info, "recovered batches from the commit log",
                 {{"batches", std::to_string(recovered)}});
  }
  applied = ledger.applied_batch();
  if (!applied.ok()) return applied.error();
  Recovered out;
  out.applied_batch = applied.value();
  out.next_batch = std::max({applied.value(), last_logged, log.last_batch()}) + 1;
  if (auto s = log.release_through(applied.value()); !s.ok()) return s.error();

  Connection& db = ledger.connection();
  auto sequence = single_integer(db, "SELECT coalesce(max(sequence), 0) FROM transactions");
  if (!sequence.ok()) return sequence.error();
  out.next_sequence = sequence.value() + 1;
  auto log_id = single_integer(db, "SELECT coalesce(max(log_id), 0) FROM audit_log");
  if (!log_id.ok()) return log_id.error();
  out.next_log_id = log_id.value() + 1;
  auto event_id = single_integer(db, "SELECT coalesce(max(id), 0) FROM events");
  if (!event_id.ok()) return event_id.error();
  out.next_event_id = event_id.value() + 1;
  auto created_at = single_integer(db, "SELECT coalesce(max(created_at), 0) FROM commit_times");
  if (!created_at.ok()) return created_at.error();
  out.last_created_at_ms = created_at.value();
  return out;
}

}  // namespace balanced::storage::sqlite
