// The SQLite store's commit log: records read back in order, a torn tail cut off, a
// corrupt segment refused, segments rotated and released, copies for backups; its
// checksum, CRC-32C, against the standard vectors.
#include "storage/sqlite/commit_log.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/resource.h>

#include <csignal>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <thread>

#include "core/json_codec.h"
#include "storage/reconcile.h"
#include "storage/sqlite/checkpointer.h"
#include "storage/sqlite/crc32c.h"
#include "storage/sqlite/event_rows.h"
#include "storage/sqlite/paced_vfs.h"
#include "storage/sqlite/sqlite_db.h"
#include "storage/sqlite/sqlite_store.h"
#include "support/process.h"

namespace balanced::storage {
namespace {

namespace fs = std::filesystem;

using Records = std::vector<std::pair<int64_t, std::string>>;

TEST(Crc32c, MatchesTheStandardVectorsAndTheTableEverywhere) {
  // RFC 3720, appendix B.4, and the usual check value.
  EXPECT_EQ(crc32c(0, "123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c(0, std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(crc32c(0, std::string(32, '\xff')), 0x62A8AB43u);
  std::string ascending(32, '\0');
  for (int i = 0; i < 32; ++i) ascending[i] = static_cast<char>(i);
  EXPECT_EQ(crc32c(0, ascending), 0x46DD794Eu);
  EXPECT_EQ(crc32c(0, ""), 0u);
  // Every length and alignment around the 8-byte steps, and continuation.
  std::mt19937 random(7);
  std::string data(4096 + 64, '\0');
  for (char& c : data) c = static_cast<char>(random());
  for (size_t offset = 0; offset < 9; ++offset) {
    for (size_t length : {0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 4096}) {
      const std::string_view piece(data.data() + offset, length);
      ASSERT_EQ(crc32c(0, piece), crc32c_portable(0, piece)) << offset << " " << length;
      const size_t half = length / 3;
      ASSERT_EQ(crc32c(crc32c(0, piece.substr(0, half)), piece.substr(half)), crc32c(0, piece));
    }
  }
  std::cout << "crc32c uses the " << (crc32c_hardware() ? "SSE4.2 instruction" : "table") << "\n";
}

// Opens the log at `directory`, returning every record past `after`.
Status read_all(CommitLog& log, const std::string& directory, Records& records, int64_t after = 0,
                uint64_t segment_bytes_max = CommitLog::segment_bytes_max_default,
                bool prepare_segments = false) {
  return log.open(
      directory, true, after,
      [&](int64_t batch, std::string_view payload) {
        records.emplace_back(batch, std::string(payload));
        return Status();
      },
      segment_bytes_max, prepare_segments);
}

// Opens a new log at `directory` for appends (what it holds is not looked at).
Status open_fresh(CommitLog& log, const std::string& directory,
                  uint64_t segment_bytes_max = CommitLog::segment_bytes_max_default,
                  bool prepare_segments = false) {
  Records ignored;
  return read_all(log, directory, ignored, 0, segment_bytes_max, prepare_segments);
}

std::vector<fs::path> segments(const std::string& directory) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(directory)) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

TEST(CommitLog, RecordsComeBackInOrderPastTheWatermark) {
  testing::TempDir dir;
  const std::string path = (dir.path() / "log").string();
  {
    CommitLog log;
    Records none;
    ASSERT_TRUE(read_all(log, path, none).ok());
    EXPECT_TRUE(none.empty());
    EXPECT_EQ(log.last_batch(), 0);
    for (int64_t batch = 1; batch <= 5; ++batch) {
      ASSERT_TRUE(log.append(batch, "payload " + std::to_string(batch) + std::string(batch * 100, 'x')).ok());
    }
    EXPECT_EQ(log.last_batch(), 5);
  }
  CommitLog again;
  Records records;
  ASSERT_TRUE(read_all(again, path, records, 2).ok());
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].first, 3);
  EXPECT_EQ(records[0].second, "payload 3" + std::string(300, 'x'));
  EXPECT_EQ(records[2].first, 5);
  EXPECT_EQ(again.last_batch(), 5);
  // Appends go on after the last batch, into a segment of their own.
  ASSERT_TRUE(again.append(6, "six").ok());
  EXPECT_EQ(again.last_batch(), 6);
}

TEST(CommitLog, ATornTailIsCutOffAndAppendsGoOn) {
  testing::TempDir dir;
  const std::string path = (dir.path() / "log").string();
  {
    CommitLog log;
    ASSERT_TRUE(open_fresh(log, path).ok());
    ASSERT_TRUE(log.append(1, "one").ok());
    ASSERT_TRUE(log.append(2, "two").ok());
  }
  // A crash in the middle of writing record 3: its header and half its payload.
  const fs::path last = segments(path).back();
  const auto whole = fs::file_size(last);
  {
    std::ofstream out(last, std::ios::binary | std::ios::app);
    const char torn[] = {10, 0, 0, 0, 1, 2, 3, 4, 3, 0, 0, 0, 0, 0, 0, 0, 't', 'h'};
    out.write(torn, sizeof torn);
  }
  {
    CommitLog log;
    Records records;
    ASSERT_TRUE(read_all(log, path, records).ok());
    ASSERT_EQ(records.size(), 2u);
    EXPECT_EQ(records[1].second, "two");
    EXPECT_EQ(fs::file_size(last), whole);  // the torn record is gone
    ASSERT_TRUE(log.append(3, "three").ok());
  }
  CommitLog log;
  Records records;
  ASSERT_TRUE(read_all(log, path, records).ok());
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[2], (std::pair<int64_t, std::string>{3, "three"}));
}

TEST(CommitLog, AFlippedByteIsCaughtByTheChecksum) {
  testing::TempDir dir;
  const std::string path = (dir.path() / "log").string();
  {
    CommitLog log;
    ASSERT_TRUE(open_fresh(log, path, 64).ok());  // a segment per record
    ASSERT_TRUE(log.append(1, std::string(100, 'a')).ok());
    ASSERT_TRUE(log.append(2, std::string(100, 'b')).ok());
  }
  const auto files = segments(path);
  ASSERT_GE(files.size(), 2u);
  {
    std::fstream file(files.front(), std::ios::binary | std::ios::in | std::ios::out);
    file.seekp(50);
    file.put('z');
  }
  // Not the last segment: corruption, not a torn write; the log refuses to open.
  CommitLog log;
  Records records;
  const Status status = read_all(log, path, records);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.detail().find("corrupt"), std::string::npos) << status.detail();
}

TEST(CommitLog, SegmentsRotateAndOnlyMaterializedOnesAreReleased) {
  testing::TempDir dir;
  const std::string path = (dir.path() / "log").string();
  CommitLog log;
  ASSERT_TRUE(open_fresh(log, path, 1000).ok());
  for (int64_t batch = 1; batch <= 10; ++batch) ASSERT_TRUE(log.append(batch, std::string(400, 'p')).ok());
  // 416 bytes a record, at most 1,000 bytes a segment: two records a segment.
  EXPECT_EQ(segments(path).size(), 5u);  // 1-2, 3-4, 5-6, 7-8, 9-10
  ASSERT_TRUE(log.release_through(5).ok());  // 5-6 still holds batch 6
  EXPECT_EQ(segments(path).size(), 3u);
  ASSERT_TRUE(log.release_through(10).ok());  // all but the segment appended to
  EXPECT_EQ(segments(path).size(), 1u);
  ASSERT_TRUE(log.append(11, "eleven").ok());
  CommitLog reopened;
  Records records;
  ASSERT_TRUE(read_all(reopened, path, records).ok());
  ASSERT_EQ(records.size(), 3u);  // 9 and 10 (not released: their segment was being appended to), 11
  EXPECT_EQ(records[2].first, 11);
}

TEST(CommitLog, PreparedSegmentsAreZerosAheadOfTheRecords) {
  testing::TempDir dir;
  const std::string path = (dir.path() / "log").string();
  const uint64_t segment_bytes = 1u << 20;
  {
    CommitLog log;
    ASSERT_TRUE(open_fresh(log, path, segment_bytes, true).ok());
    log.wait_for_prepared_segment();
    ASSERT_TRUE(log.append(1, "one").ok());  // into the plain first segment
    ASSERT_TRUE(log.append(2, "two").ok());  // traded for the prepared one
    ASSERT_TRUE(log.append(3, std::string(1000, 't')).ok());
    // The next one is made on a thread of its own: wait until it is there (under load
    // it may not even be created yet when append() returns).
    log.wait_for_prepared_segment();
    const auto files = segments(path);
    ASSERT_EQ(files.size(), 3u) << "the plain segment, the prepared one, a new prepared one";
    EXPECT_EQ(fs::file_size(files[0]), 16u + 3u);
    EXPECT_EQ(fs::file_size(files[1]), segment_bytes);  // written full of zeros beforehand
    EXPECT_EQ(files[2].extension(), ".zero");
  }
  // A crash tore record 4, written over the zeros of the prepared segment.
  const fs::path prepared = segments(path)[1];
  {
    std::fstream file(prepared, std::ios::binary | std::ios::in | std::ios::out);
    file.seekp(16 + 3 + 16 + 1000);
    const char torn[] = {20, 0, 0, 0, 9, 9, 9, 9, 4, 0, 0, 0, 0, 0, 0, 0, 'x'};
    file.write(torn, sizeof torn);
  }
  CommitLog log;
  Records records;
  ASSERT_TRUE(read_all(log, path, records).ok());
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[2].second, std::string(1000, 't'));
  EXPECT_EQ(fs::file_size(prepared), 16u + 3u + 16u + 1000u);  // cut after the last whole record
  for (const auto& file : segments(path)) EXPECT_NE(file.extension(), ".zero");  // leftovers removed
  ASSERT_TRUE(log.append(4, "four").ok());
  CommitLog again;
  Records all;
  ASSERT_TRUE(read_all(again, path, all).ok());
  EXPECT_EQ(all.size(), 4u);
}

TEST(CommitLog, AFailedAppendRefusesEveryLaterOne) {
  testing::TempDir dir;
  const std::string path = (dir.path() / "log").string();
  CommitLog log;
  ASSERT_TRUE(open_fresh(log, path).ok());
  ASSERT_TRUE(log.append(1, "one").ok());
  // A file size limit makes the next write fail (EFBIG), as a full or failing disk would.
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = saved;
  small.rlim_cur = 64;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  const Status failed = log.append(2, std::string(1000, 'x'));
  ::setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_FALSE(failed.ok());
  EXPECT_TRUE(log.broken());
  EXPECT_EQ(log.append(3, "three").code(), Code::unavailable);  // the file's state is unknown
}

TEST(CommitLog, ACopyHoldsEveryRecord) {
  testing::TempDir dir;
  const std::string path = (dir.path() / "log").string();
  CommitLog log;
  ASSERT_TRUE(open_fresh(log, path, 1000).ok());
  for (int64_t batch = 1; batch <= 7; ++batch) ASSERT_TRUE(log.append(batch, std::string(400, 'c')).ok());
  const std::string copy = (dir.path() / "copy").string();
  ASSERT_TRUE(CommitLog::copy(path, copy).ok());
  EXPECT_FALSE(CommitLog::copy(path, copy).ok());  // never into an existing directory
  CommitLog copied;
  Records records;
  ASSERT_TRUE(read_all(copied, copy, records).ok());
  EXPECT_EQ(records.size(), 7u);
  CommitLog::remove(copy);
  EXPECT_FALSE(fs::exists(copy));
}

TEST(CommitLog, ALedgerWithTheFirstDesignsLogIsConverted) {
  // The first commit log was a SQLite file at the same path: its batches past the
  // watermark are materialized at open, then the file gives way to the directory.
  testing::TempDir dir;
  SqliteOptions options;
  options.path = (dir.path() / "ledger.db").string();
  options.materialize_interval_ms = 60'000;
  std::string record;
  {
    auto store = open_sqlite_store(options);
    ASSERT_TRUE(store.ok());
  }
  // A batch as the committer encoded it: one account opened with 100.
  {
    auto scratch_options = options;
    scratch_options.path = (dir.path() / "scratch.db").string();
    auto scratch = open_sqlite_store(scratch_options);
    ASSERT_TRUE(scratch.ok());
    core::CreateAccount open{"legacy", "USD", 100, 0, ""};
    std::vector<core::Operation> operations{open};
    ASSERT_TRUE(scratch.value()->apply(operations, 1).ok());
  }
  {
    CommitLog scratch_log;
    ASSERT_TRUE(scratch_log
                    .open(commit_log_path((dir.path() / "scratch.db").string()), true, 0,
                          [&](int64_t, std::string_view payload) {
                            record = std::string(payload);
                            return Status();
                          })
                    .ok());
  }
  ASSERT_FALSE(record.empty());
  CommitLog::remove(commit_log_path(options.path));
  sqlite3* old = nullptr;
  ASSERT_EQ(sqlite3_open(commit_log_path(options.path).c_str(), &old), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(old, "CREATE TABLE commit_log (batch INTEGER PRIMARY KEY, effects BLOB NOT NULL)",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_stmt* insert = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(old, "INSERT INTO commit_log VALUES (1, ?1)", -1, &insert, nullptr), SQLITE_OK);
  sqlite3_bind_blob(insert, 1, record.data(), static_cast<int>(record.size()), SQLITE_TRANSIENT);
  ASSERT_EQ(sqlite3_step(insert), SQLITE_DONE);
  sqlite3_finalize(insert);
  sqlite3_close(old);

  auto store = open_sqlite_store(options);
  ASSERT_TRUE(store.ok()) << store.error().detail;
  EXPECT_TRUE(fs::is_directory(commit_log_path(options.path)));
  auto account = store.value()->account("legacy");
  ASSERT_TRUE(account.ok());
  EXPECT_EQ(account.value().balance, 100);
}

// The committer keeps at most committer_accounts_max accounts in memory, the oldest out
// first; an account it let go is read again from the overlay or the file, as it stands.
TEST(SqliteStore, TheCommittersAccountsAreBoundedAndAMissReadsTheNewestState) {
  testing::TempDir dir;
  SqliteOptions options;
  options.path = (dir.path() / "ledger.db").string();
  options.committer_accounts_max = 3;
  options.materialize_interval_ms = 5;
  auto store = open_sqlite_store(options);
  ASSERT_TRUE(store.ok()) << store.error().detail;
  constexpr int kAccounts = 10;
  std::vector<core::Operation> opens;
  for (int i = 0; i < kAccounts; ++i) opens.emplace_back(core::CreateAccount{"c" + std::to_string(i), "USD", 1000, 0, ""});
  ASSERT_TRUE(store.value()->apply(opens, 1).ok());
  // Each round moves 1 + i from every account to the next, one batch per transfer, so the
  // cache turns over many times; some batches are materialized meanwhile, some not.
  std::vector<int64_t> expected(kAccounts, 1000);
  int64_t batch = 2;
  for (int round = 0; round < 6; ++round) {
    for (int i = 0; i < kAccounts; ++i) {
      core::Transfer t{"r" + std::to_string(round) + "-" + std::to_string(i), "c" + std::to_string(i),
                       "c" + std::to_string((i + 1) % kAccounts), 1 + i, "", "", "", ""};
      t.request_hash = core::transfer_request_hash(t);
      std::vector<core::Operation> one{t};
      auto effects = store.value()->apply(one, batch++);
      ASSERT_TRUE(effects.ok()) << effects.error().detail;
      ASSERT_EQ(effects.value().outcomes.front().code, Code::ok) << effects.value().outcomes.front().detail;
      expected[i] -= 1 + i;
      expected[(i + 1) % kAccounts] += 1 + i;
    }
    if (round % 2 == 1) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (int i = 0; i < kAccounts; ++i) {
    auto account = store.value()->account("c" + std::to_string(i));
    ASSERT_TRUE(account.ok());
    EXPECT_EQ(account.value().balance, expected[i]) << i;
    EXPECT_EQ(account.value().version, 1 + 12) << i;  // its deposit, then 6 rounds of a debit and a credit
  }
  store.value().reset();
  store = open_sqlite_store(options);
  ASSERT_TRUE(store.ok());
  auto report = reconcile(*store.value());
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report.value().clean()) << report.value().problems.front();
}

// The pacing waits only near a commit-log fdatasync: while one is marked, and not once
// it has ended long enough ago.
TEST(PacedVfs, WaitsOnlyNearACommitLogSync) {
  const auto past_near = std::chrono::nanoseconds(2 * sqlite::commit_sync_near_ns);
  std::this_thread::sleep_for(past_near);  // any earlier sync of this process long ended
  EXPECT_FALSE(sqlite::commit_sync_near());
  {
    const sqlite::CommitSyncMark mark;
    EXPECT_TRUE(sqlite::commit_sync_near());
    std::this_thread::sleep_for(past_near);  // a long fdatasync is near all along
    EXPECT_TRUE(sqlite::commit_sync_near());
  }
  std::this_thread::sleep_for(past_near);
  EXPECT_FALSE(sqlite::commit_sync_near());
}

// The materializer's VFS: a WAL database written through it is written back every
// paced_write_bytes, reads back whole through the default VFS, and checkpoints.
TEST(PacedVfs, WritesBackAsItWritesAndKeepsEveryByte) {
  testing::TempDir dir;
  const std::string path = (dir.path() / "paced.db").string();
  ASSERT_NE(sqlite::paced_vfs(), nullptr);
  const std::string row(1000, 'r');
  const int rows = 4000;  // ~4 MB of rows: WAL frames, then the checkpoint
  const uint64_t syncs_before = sqlite::paced_writebacks();
  {
    sqlite::Connection db;
    ASSERT_TRUE(db.open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                        sqlite::ConnectionOptions{.busy_timeout_ms = 1000, .vfs = sqlite::paced_vfs()})
                    .ok());
    ASSERT_TRUE(db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL); BEGIN")
                    .ok());
    for (int i = 0; i < rows; ++i) {
      ASSERT_TRUE(db.exec("INSERT INTO t (v) VALUES ('" + row + "')").ok());
    }
    ASSERT_TRUE(db.exec("COMMIT; PRAGMA wal_checkpoint(TRUNCATE)").ok());
  }
  const uint64_t added = sqlite::paced_writebacks() - syncs_before;
  // The WAL and the checkpoint each wrote ~4 MB: at least that many write-backs each.
  EXPECT_GE(added, 2 * (rows * row.size()) / sqlite::paced_write_bytes);
  sqlite::Connection check;
  ASSERT_TRUE(check.open(path, SQLITE_OPEN_READONLY, sqlite::ConnectionOptions{}).ok());
  sqlite3_stmt* statement = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(check.get(),
                               "SELECT count(*), sum(length(v)) FROM t WHERE v = ?1", -1,
                               &statement, nullptr),
            SQLITE_OK);
  sqlite3_bind_text(statement, 1, row.data(), static_cast<int>(row.size()), SQLITE_STATIC);
  ASSERT_EQ(sqlite3_step(statement), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int64(statement, 0), rows);
  EXPECT_EQ(sqlite3_column_int64(statement, 1), int64_t{rows} * 1000);
  sqlite3_finalize(statement);
  EXPECT_TRUE(check.exec("PRAGMA integrity_check").ok());
}

// The checkpointer: the writer's log goes back into the file on the checkpointer's
// thread, the log stays under the inline bound however much is written, nothing is lost.
TEST(Checkpointer, CopiesTheWritersLogBackOnItsOwnThreadAndBoundsIt) {
  testing::TempDir dir;
  const std::string path = (dir.path() / "ledger.db").string();
  sqlite::Connection writer;
  ASSERT_TRUE(writer.open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, sqlite::ConnectionOptions{}).ok());
  ASSERT_TRUE(writer.exec("PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;"
                          "CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)")
                  .ok());
  sqlite::Checkpointer checkpointer;
  ASSERT_TRUE(checkpointer.start(path, sqlite::ConnectionOptions{}, 0).ok());
  checkpointer.watch(writer.get());
  // ~24,000 pages of 4 KiB in 2,000 commits: three times the inline bound of log pages.
  const int commits = 2000;
  const int rows_per_commit = 12;
  const int page_bytes = 4096;
  uintmax_t log_bytes_max = 0;
  for (int i = 0; i < commits; ++i) {
    std::string sql = "BEGIN;";
    for (int r = 0; r < rows_per_commit; ++r) sql += "INSERT INTO t (v) VALUES (randomblob(3900));";
    ASSERT_TRUE(writer.exec(sql + "COMMIT").ok());
    log_bytes_max = std::max(log_bytes_max, fs::file_size(path + "-wal"));
  }
  for (int i = 0; i < 500 && checkpointer.checkpoints() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GT(checkpointer.checkpoints(), 0u);
  // The log was reset again and again: it never held more than the inline bound and the
  // commit that reached it (13 pages here), whatever the thread was doing then: the writer
  // waits for a run of the thread under way, then copies the rest. A frame is a page and
  // a 24-byte header.
  EXPECT_LE(log_bytes_max, uintmax_t{sqlite::Checkpointer::wal_pages_inline + 2 * (rows_per_commit + 1)} *
                                   (page_bytes + 24) + 32);
  checkpointer.stop();
  sqlite::Connection check;
  ASSERT_TRUE(check.open(path, SQLITE_OPEN_READONLY, sqlite::ConnectionOptions{}).ok());
  sqlite3_stmt* statement = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(check.get(), "SELECT count(*) FROM t", -1, &statement, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(statement), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int64(statement, 0), int64_t{commits} * rows_per_commit);
  sqlite3_finalize(statement);
  EXPECT_TRUE(check.exec("PRAGMA integrity_check").ok());
}

// Schema 14 (event_rows.h): a transaction's event keeps what its row lacks, and only
// when the row says the rest; the rendered body is the one the committer made.
TEST(EventRows, ATransactionsEventKeepsOnlyWhatItsRowLacks) {
  core::Transaction row{.id = "t1",
                        .source = "alice",
                        .destination = "bob",
                        .source_balance_after = 70,
                        .destination_balance_after = 30,
                        .source_version_after = 4,
                        .destination_version_after = 2};
  core::Event event{.kind = core::EventKind::transaction, .occurred_at_ms = 1'700'000'000'123};
  event.balances = {{.account_number = "alice", .balance = 70, .available = 70, .version = 4},
                    {.account_number = "bob", .balance = 30, .available = 30, .version = 2}};
  const sqlite::RowParties parties{.source = "alice",
                                   .destination = "bob",
                                   .source_balance = 70,
                                   .destination_balance = 30,
                                   .source_version = 4,
                                   .destination_version = 2};
  const auto whole = [&] { return core::encode_event(event, "transaction.transfer", std::string_view()); };
  EXPECT_EQ(sqlite::compact_event_body(event, row), std::string());
  EXPECT_EQ(sqlite::expand_event_body("", "transaction.transfer", event.occurred_at_ms, parties).value(), whole());
  // Available amounts apart from the balances (a hold pending, an overdraft).
  event.balances[0].available = 50;
  event.balances[1].available = -9'223'372'036'854'775'807 - 1;
  const auto kept = sqlite::compact_event_body(event, row);
  ASSERT_TRUE(kept.has_value());
  EXPECT_EQ(*kept, "50,-9223372036854775808");
  EXPECT_EQ(sqlite::expand_event_body(*kept, "transaction.transfer", event.occurred_at_ms, parties).value(), whole());
  // What the row does not say is kept whole.
  auto other = event;
  other.balances[1].version = 3;
  EXPECT_FALSE(sqlite::compact_event_body(other, row).has_value());
  other = event;
  std::swap(other.balances[0], other.balances[1]);
  EXPECT_FALSE(sqlite::compact_event_body(other, row).has_value());
  other = event;
  other.balances.pop_back();
  EXPECT_FALSE(sqlite::compact_event_body(other, row).has_value());
  other = event;
  other.kind = core::EventKind::account_updated;
  EXPECT_FALSE(sqlite::compact_event_body(other, row).has_value());
  // A damaged body is an error, never a guess.
  for (const char* bad : {"50", "50,", ",1", "x,1", "1,2,3", "1, 2", "99999999999999999999,1"}) {
    EXPECT_FALSE(sqlite::expand_event_body(bad, "transaction.transfer", 0, parties).ok()) << bad;
  }
}

}  // namespace
}  // namespace balanced::storage
