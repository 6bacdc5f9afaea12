// The production store: MySQL 8 or MariaDB 10.11 (InnoDB), shared by any number of
// balanced replicas writing at once.
//
// Correctness comes from the database alone. A batch is ONE database transaction on
// one committer connection (READ COMMITTED, several per replica):
//   1. SELECT ... FOR UPDATE the accounts the batch names, by primary key (the account
//      number), in one statement: InnoDB locks them in key order, which is the sorted
//      order every batch uses, so batches on different replicas queue behind each other
//      instead of deadlocking;
//   2. core::apply_batch decides every outcome (assuming every transaction id is new);
//   3. one round trip: multi-row INSERT of new accounts, one multi-row upsert of the
//      changed ones (all exist and are locked, so it only updates), multi-row INSERT of
//      transactions; a second: the audit records and COMMIT.
// A repeated transaction id (a client retry, or another replica first) hits the unique
// key: the batch rolls back and runs again with every id looked up. A deadlock, a lock
// wait timeout or a lost connection rolls back the whole batch and reports
// Code::unavailable; the engine retries, and the retry finds the winner's rows.
//
// Audit records are written unsealed, in the same transaction as their change. The
// hash chain needs one total order, which concurrent writers do not have, so sealing is
// a singleton job (seal_audit(), elected by a lease): it takes the records no batch can
// still be writing below (the audit barrier), gives each the next chain position,
// prev_hash and hash in a link row, and writes the chain head, under a fencing token the
// database checks.
#pragma once

#include <memory>
#include <string>

#include "storage/mysql/mysql_db.h"
#include "storage/store.h"

namespace balanced::storage {

struct MysqlOptions {
  mysql::ConnectionConfig connection;
  // Connections for reads (thread-safe readers share them).
  size_t read_connections_max = 16;
  // Batches one replica commits at once, one connection each. Fewer make larger batches,
  // which cost the database less CPU per transfer: 2 beat 4 in every alternated pair of
  // bench/mysql_committers.sh, and with the change feed, whose event counter row every
  // commit takes in turn, 1 beat 2 (bench/feed_mysql.sh, docs/BENCHMARKS.md): a second
  // connection only waits for the counter with a batch half as large. More only pay
  // against a database with idle cores and a long round trip.
  size_t committer_connections = 1;
  // How long a caller waits for a free connection before 503 unavailable.
  int64_t pool_wait_ms_max = 2000;
  // Rows in one multi-row statement, at most (bounds statement size).
  size_t rows_per_statement_max = 1000;
  // InnoDB's wait for a row lock, per statement, before the batch is retried.
  int lock_wait_timeout_s = 5;
  // A read (a cache miss, a strong read, history) waits at most this for a silent
  // database, then fails 503 unavailable: balanced sets it from --storage-deadline-ms, so
  // that a read is answered before the gateway's upstream timeout too.
  unsigned reader_timeout_s = 5;
};

// The schema version this build reads and writes.
int mysql_schema_version();
// Applies pending migrations up to `target_version` (serialized across processes by a
// named lock); returns the version before and after. Tests name an older target to
// build a database as an earlier release left it.
Result<std::pair<int, int>> migrate_mysql(const mysql::ConnectionConfig& config,
                                          int target_version = mysql_schema_version());

class MysqlStore;
// Never fails because the database is down: the store connects on demand, and ping()
// says whether it can serve. Fails on an invalid configuration.
Result<std::unique_ptr<MysqlStore>> open_mysql_store(const MysqlOptions& options);

struct SealResult {
  int64_t sealed = 0;      // records chained by this call
  int64_t chain_head = 0;  // chain position of the last sealed record
};

class MysqlStore final : public Store {
 public:
  ~MysqlStore() override;
  using Store::apply;
  Result<core::BatchEffects> apply(std::span<const core::Operation> operations,
                                   int64_t now_ms, ApplyTimings& timings) override;
  Result<core::Account> account(std::string_view number) override;
  Result<core::Transaction> transaction(std::string_view id) override;
  Result<HistoryPage> history(std::string_view number, std::optional<int64_t> before_sequence,
                              size_t limit) override;
  Result<BalanceAt> balance_at(std::string_view number, int64_t at_ms) override;
  Result<HistoryPage> holds(std::string_view number, std::optional<int64_t> before_sequence,
                            size_t limit) override;
  Result<std::vector<std::string>> overdue_holds(int64_t now_ms, size_t limit) override;
  Result<HistoryPage> review_holds(std::string_view rule, std::optional<int64_t> before_sequence, size_t limit) override;
  // OK when the database answers and its schema is this build's version.
  Result<EventPage> events_after(int64_t after, size_t limit) override;
  Result<int64_t> prune_events(int64_t before_ms, size_t limit, int64_t through_max) override;
  Result<int64_t> relay_position(std::string_view relay) override;
  Result<core::Volumes> volumes(std::string_view currency, int64_t from_hour, int64_t to_hour) override;
  Result<std::map<core::TransactionType, core::DailyTotal>> flows(std::string_view number, int64_t from_day,
                                                                 int64_t to_day) override;
  Status confirm_relay(std::string_view relay, int64_t position) override;
  Status ping() override;
  // Audit records are visited in chain order, sealed ones only, with log_id set to
  // their chain position.
  Status scan(ScanVisitor& visitor) override;
  size_t apply_concurrency() const override;

  // Seals up to `records_max` unsealed audit records into the hash chain. `fence` is the
  // caller's fencing token: the database refuses (Code::forbidden) a token lower than
  // one it has already seen, so a leader that lost its lease cannot write.
  Result<SealResult> seal_audit(int64_t fence, size_t records_max);
  // Audit records written but not yet sealed.
  Result<int64_t> unsealed_audit_records() override;
  Result<std::optional<bool>> synchronous_replica() override;

  struct Impl;

 private:
  friend Result<std::unique_ptr<MysqlStore>> open_mysql_store(const MysqlOptions&);
  explicit MysqlStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace balanced::storage
