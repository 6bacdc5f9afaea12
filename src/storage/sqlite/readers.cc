#include "storage/sqlite/readers.h"

#include "storage/rows.h"
#include "storage/sqlite/event_rows.h"

namespace balanced::storage::sqlite {

Status ReadConnection::prepare() {
  if (auto s = begin.prepare(db, "BEGIN"); !s.ok()) return s;
  if (auto s = commit.prepare(db, "COMMIT"); !s.ok()) return s;
  const std::string history_sql =
      "SELECT * FROM (SELECT " + transaction_columns() +
      " FROM transactions WHERE source_account = ?1 AND sequence < ?2 AND status = "
      "'committed' ORDER BY sequence DESC LIMIT ?3) UNION ALL SELECT * FROM (SELECT " +
      transaction_columns() +
      " FROM transactions WHERE destination_account = ?1 AND sequence < ?2 AND status = "
      "'committed' ORDER BY sequence DESC LIMIT ?3) ORDER BY sequence DESC LIMIT ?3";
  // The committed holds, found by their keys (hold_keys, schema 13), rows by sequence.
  const std::string holds_sql =
      "SELECT " + transaction_columns() +
      " FROM transactions WHERE sequence IN (SELECT sequence FROM (SELECT sequence FROM hold_keys WHERE "
      "source_account = ?1 AND sequence < ?2 ORDER BY sequence DESC LIMIT ?3) UNION ALL SELECT sequence FROM "
      "(SELECT sequence FROM hold_keys WHERE destination_account = ?1 AND sequence < ?2 ORDER BY sequence DESC "
      "LIMIT ?3)) ORDER BY sequence DESC LIMIT ?3";
  if (auto s = holds.prepare(db, holds_sql); !s.ok()) return s;
  if (auto s = overdue_holds.prepare(db,
                                     "SELECT t.transaction_id FROM hold_keys k JOIN transactions t ON t.sequence = "
                                     "k.sequence WHERE k.pending = 1 AND k.expires_at <= ?1 ORDER BY k.expires_at "
                                     "LIMIT ?2");
      !s.ok()) {
    return s;
  }
  // Schema 14: the row's parties from column 6 on (event_rows.h).
  if (auto s = events_after.prepare(
          db, "SELECT e.id, e.type, e.occurred_at, e.body, a.detail, e.sequence, " + std::string(kRowPartiesColumns) +
                  " FROM events e LEFT JOIN audit_log a ON a.log_id = e.audit_log_id LEFT JOIN transactions t ON "
                  "t.sequence = e.sequence WHERE e.id > ?1 AND e.id < ?2 ORDER BY e.id LIMIT ?3");
      !s.ok()) {
    return s;
  }
  if (auto s = oldest_event.prepare(db, "SELECT coalesce(min(id), 0) FROM events"); !s.ok()) return s;
  // One statement, so one snapshot: the batch the file holds through, with the totals (a
  // row a day and type, summed by the caller, saturating: SQL's sum() would fail instead).
  if (auto s = flows.prepare(db,
                             "SELECT m.value, d.type, d.credits, d.debits, d.count FROM meta m "
                             "LEFT JOIN daily_totals d ON d.account = ?1 AND d.day BETWEEN ?2 AND ?3 "
                             "WHERE m.name = 'applied_batch'");
      !s.ok()) {
    return s;
  }
  if (auto s = volumes.prepare(db,
                               "SELECT m.value, v.hour, v.type, v.count, v.amount FROM meta m "
                               "LEFT JOIN volume_totals v ON v.currency = ?1 AND v.hour BETWEEN ?2 AND ?3 "
                               "WHERE m.name = 'applied_batch'");
      !s.ok()) {
    return s;
  }
  // Newest first along hold_keys_review; the rule filters the rows as they come.
  if (auto s = review_holds.prepare(db, "SELECT " + transaction_columns() +
                                            " FROM transactions WHERE sequence IN (SELECT sequence FROM hold_keys "
                                            "WHERE pending = 1 AND review = 1 AND sequence < ?2) AND (?1 = '' OR "
                                            "risk_rule = ?1) ORDER BY sequence DESC LIMIT ?3");
      !s.ok()) {
    return s;
  }
  if (auto s = applied_batch.prepare(db, "SELECT value FROM meta WHERE name = 'applied_batch'"); !s.ok()) return s;
  // transactions_by_source, newest first: the caller stops at the first row older than
  // its window (commit times grow with the sequence).
  if (auto s = recent_debits.prepare(db,
                                     "SELECT created_at, amount, type FROM transactions WHERE source_account = ?1 "
                                     "AND status = 'committed' ORDER BY sequence DESC");
      !s.ok()) {
    return s;
  }
  if (auto s = reference_owner.prepare(db, "SELECT transaction_id FROM unique_references WHERE reference_key = ?1");
      !s.ok()) {
    return s;
  }
  if (auto s = account.prepare(db, "SELECT " + account_columns() +
                                       " FROM accounts WHERE account_number = ?1");
      !s.ok()) {
    return s;
  }
  if (auto s = transaction.prepare(db, "SELECT " + transaction_columns() +
                                           " FROM transactions WHERE transaction_id = ?1");
      !s.ok()) {
    return s;
  }
  // The bound: the last sequence stamped at or before the instant (created_at grows
  // with the sequence: SqliteStore::apply never stamps a batch earlier than the last;
  // LedgerWriter keeps commit_times).
  if (auto s = balance_at.prepare(
          db,
          "SELECT b, v, seq FROM (SELECT * FROM (SELECT source_balance_after AS b, source_version_after AS v, "
          "sequence AS seq FROM transactions WHERE source_account = ?1 AND sequence <= ?3 AND status = "
          "'committed' ORDER BY sequence DESC LIMIT 1) UNION ALL SELECT * FROM (SELECT "
          "destination_balance_after, destination_version_after, sequence FROM transactions WHERE "
          "destination_account = ?1 AND sequence <= ?3 AND status = 'committed' ORDER BY sequence DESC "
          "LIMIT 1)) ORDER BY seq DESC LIMIT 1");
      !s.ok()) {
    return s;
  }
  if (auto s = sequence_at.prepare(
          db, "SELECT last_sequence FROM commit_times WHERE created_at <= ?1 ORDER BY created_at DESC LIMIT 1");
      !s.ok()) {
    return s;
  }
  if (auto s = postings_through.prepare(
          db,
          "SELECT (SELECT COUNT(*) FROM transactions WHERE source_account = ?1 AND status = 'committed' "
          "AND sequence <= ?2) + (SELECT COUNT(*) FROM transactions WHERE destination_account = ?1 AND "
          "status = 'committed' AND sequence <= ?2)");
      !s.ok()) {
    return s;
  }
  return history.prepare(db, history_sql);
}

void ReaderPool::configure(std::string path, ConnectionOptions options, size_t connections_max) {
  path_ = std::move(path);
  options_ = options;
  connections_max_ = std::max<size_t>(1, connections_max);
}

Result<std::unique_ptr<ReadConnection>> ReaderPool::open() {
  auto reader = std::make_unique<ReadConnection>();
  Status status = reader->db.open(path_, SQLITE_OPEN_READONLY, options_);
  if (status.ok()) status = reader->prepare();
  if (!status.ok()) return status.error();
  return reader;
}

Result<std::unique_ptr<ReadConnection>> ReaderPool::acquire() {
  {
    MutexLock lock(mutex_);
    lock.wait(returned_, [&]() REQUIRES(mutex_) { return !idle_.empty() || open_ < connections_max_; });
    if (!idle_.empty()) {
      auto reader = std::move(idle_.back());
      idle_.pop_back();
      return reader;
    }
    ++open_;
  }
  auto reader = open();
  if (!reader.ok()) {
    MutexLock lock(mutex_);
    --open_;
    returned_.notify_one();
  }
  return reader;
}

void ReaderPool::release(std::unique_ptr<ReadConnection> reader) {
  MutexLock lock(mutex_);
  idle_.push_back(std::move(reader));
  returned_.notify_one();
}

}  // namespace balanced::storage::sqlite
