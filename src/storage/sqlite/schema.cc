#include "storage/sqlite/schema.h"

#include <array>

namespace balanced::storage::sqlite {
namespace {

// Versioned migrations: entry i takes the schema from version i to i + 1. Never edit an
// entry that has shipped; append a new one.
constexpr std::array<const char*, 14> kMigrations{
    R"sql(
CREATE TABLE accounts (
  id INTEGER PRIMARY KEY,
  account_number TEXT NOT NULL UNIQUE,
  currency TEXT NOT NULL,
  balance INTEGER NOT NULL,
  overdraft_limit INTEGER NOT NULL,
  version INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE transactions (
  sequence INTEGER PRIMARY KEY,
  transaction_id TEXT NOT NULL UNIQUE,
  type TEXT NOT NULL,
  source_account TEXT NOT NULL,
  destination_account TEXT NOT NULL,
  amount INTEGER NOT NULL,
  currency TEXT NOT NULL,
  status TEXT NOT NULL,
  reject_code TEXT,
  source_balance_after INTEGER NOT NULL,
  destination_balance_after INTEGER NOT NULL,
  request_hash TEXT NOT NULL,
  client_timestamp TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX transactions_by_source ON transactions (source_account, sequence);
CREATE INDEX transactions_by_destination ON transactions (destination_account, sequence);
CREATE TABLE audit_log (
  log_id INTEGER PRIMARY KEY,
  operation_type TEXT NOT NULL,
  operator TEXT NOT NULL,
  operation_time INTEGER NOT NULL,
  detail TEXT NOT NULL,
  prev_hash BLOB NOT NULL,
  hash BLOB NOT NULL
);
CREATE TABLE meta (
  name TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (name, value) VALUES ('applied_batch', 0);
)sql",
    // Version 2 (DESIGN.md section 10): deposits' and withdrawals' references and
    // metadata, each account's version after a transaction (0 on older rows), and the
    // indexes a balance at a point in time is found by.
    R"sql(
ALTER TABLE transactions ADD COLUMN reference TEXT NOT NULL DEFAULT '';
ALTER TABLE transactions ADD COLUMN metadata TEXT NOT NULL DEFAULT '';
ALTER TABLE transactions ADD COLUMN source_version_after INTEGER NOT NULL DEFAULT 0;
ALTER TABLE transactions ADD COLUMN destination_version_after INTEGER NOT NULL DEFAULT 0;
CREATE INDEX transactions_by_source_time ON transactions (source_account, status, created_at);
CREATE INDEX transactions_by_destination_time ON transactions (destination_account, status, created_at);
)sql",
    // Version 3 (DESIGN.md section 10): accounts' type, status, pending amounts and
    // metadata. And one index for a balance at a point in time instead of version 2's
    // two: one writer stamps created_at in sequence order, never going back
    // (SqliteStore::apply), so an index on it alone (appended to at its right edge,
    // nearly free to keep) bounds the sequence and the (account, sequence) indexes do the
    // rest; the two per-account time indexes cost a fifth more CPU per durable transfer
    // (docs/BENCHMARKS.md).
    R"sql(
ALTER TABLE accounts ADD COLUMN type TEXT NOT NULL DEFAULT 'checking';
ALTER TABLE accounts ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
ALTER TABLE accounts ADD COLUMN pending_debits INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN pending_credits INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN metadata TEXT NOT NULL DEFAULT '';
DROP INDEX IF EXISTS transactions_by_source_time;
DROP INDEX IF EXISTS transactions_by_destination_time;
CREATE INDEX transactions_by_time ON transactions (created_at);
)sql",
    // Version 4 (DESIGN.md section 10): holds and refunds. A row names the hold it ends
    // or the transaction it refunds, a hold its expiry; a hold's status, captured amount
    // and ender, or a transfer's refunded amount, are the only columns updated after the
    // insert. Partial indexes: a transfer writes no entry in any of them.
    R"sql(
ALTER TABLE transactions ADD COLUMN hold_id TEXT NOT NULL DEFAULT '';
ALTER TABLE transactions ADD COLUMN refund_of TEXT NOT NULL DEFAULT '';
ALTER TABLE transactions ADD COLUMN reason TEXT NOT NULL DEFAULT '';
ALTER TABLE transactions ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE transactions ADD COLUMN hold_status TEXT;
ALTER TABLE transactions ADD COLUMN settled_amount INTEGER NOT NULL DEFAULT 0;
ALTER TABLE transactions ADD COLUMN settled_by TEXT NOT NULL DEFAULT '';
CREATE INDEX holds_by_source ON transactions (source_account, sequence) WHERE type = 'hold';
CREATE INDEX holds_by_destination ON transactions (destination_account, sequence) WHERE type = 'hold';
CREATE INDEX pending_holds_by_expiry ON transactions (expires_at) WHERE hold_status = 'pending';
)sql",
    // Version 5 (DESIGN.md section 10, --unique-references): the rails' references a
    // committed deposit or withdrawal took, one owner each. Filled only under the flag.
    R"sql(
CREATE TABLE unique_references (
  reference_key TEXT PRIMARY KEY,
  transaction_id TEXT NOT NULL
) WITHOUT ROWID;
)sql",
    // Version 6: commit times in a table of their own, one row per commit time (its
    // last sequence) instead of an index entry per transaction. A balance at an
    // instant reads the same last sequence stamped at or before it; a batch of
    // thousands of rows writes one row here instead of thousands into an index.
    R"sql(
CREATE TABLE commit_times (
  created_at INTEGER PRIMARY KEY,
  last_sequence INTEGER NOT NULL
);
INSERT INTO commit_times (created_at, last_sequence)
  SELECT created_at, max(sequence) FROM transactions GROUP BY created_at;
DROP INDEX IF EXISTS transactions_by_time;
)sql",
    // Version 7 (DESIGN.md section 11): the change feed. One row per committed
    // transaction, account created and account changed, written in the same transaction
    // as the rows it describes; ids from the one writer, gapless and in commit order.
    // A ledger upgraded to it starts its feed at 1 with its next change.
    R"sql(
CREATE TABLE events (
  id INTEGER PRIMARY KEY,
  type TEXT NOT NULL,
  occurred_at INTEGER NOT NULL,
  body TEXT NOT NULL
);
)sql",
    // Version 8: a transaction's event keeps its row's JSON once, as the row's audit
    // detail (the same text, never changed): the event's body leaves the transaction out
    // and names the audit record, which the feed joins when it is read. A batched
    // transfer writes ~150 bytes less. NULL: the body is whole (rows of version 7).
    R"sql(
ALTER TABLE events ADD COLUMN audit_log_id INTEGER;
)sql",
    // Version 9: the change feed's relays, each the last event id its target confirmed
    // (retention keeps what follows).
    R"sql(
CREATE TABLE relay_positions (
  name TEXT PRIMARY KEY,
  position INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
)sql",
    // Version 10 (DESIGN.md section 11, Reports): per account, UTC day and type, what
    // moved its balance, kept with the postings; a ledger upgraded to it gets its history
    // summed in (a hold, void or expire moves no balance).
    R"sql(
CREATE TABLE daily_totals (
  account TEXT NOT NULL,
  day INTEGER NOT NULL,
  type TEXT NOT NULL,
  credits INTEGER NOT NULL,
  debits INTEGER NOT NULL,
  count INTEGER NOT NULL,
  PRIMARY KEY (account, day, type)
) WITHOUT ROWID;
INSERT INTO daily_totals (account, day, type, credits, debits, count)
SELECT account, day, type, sum(credits), sum(debits), sum(count) FROM (
  SELECT destination_account AS account, created_at / 86400000 AS day, type, amount AS credits, 0 AS debits,
         1 AS count
  FROM transactions WHERE status = 'committed' AND type NOT IN ('hold', 'void', 'expire')
  UNION ALL
  SELECT source_account, created_at / 86400000, type, 0, amount, 1
  FROM transactions WHERE status = 'committed' AND type NOT IN ('hold', 'void', 'expire')
) GROUP BY account, day, type;
)sql",
    // Version 11 (GET /reports/volumes): per currency, UTC hour and type, the committed
    // transactions and their amounts, kept with the postings; the history summed in.
    R"sql(
CREATE TABLE volume_totals (
  currency TEXT NOT NULL,
  hour INTEGER NOT NULL,
  type TEXT NOT NULL,
  count INTEGER NOT NULL,
  amount INTEGER NOT NULL,
  PRIMARY KEY (currency, hour, type)
) WITHOUT ROWID;
INSERT INTO volume_totals (currency, hour, type, count, amount)
SELECT currency, created_at / 3600000, type, count(*), sum(amount) FROM transactions
WHERE status = 'committed' GROUP BY currency, created_at / 3600000, type;
)sql",
    // Version 12 (DESIGN.md section 11, risk rules): the decision recorded with a row and
    // the rule that made it; the holds a review made, for GET /holds?reviewRule= (a
    // partial index: no other row writes an entry).
    R"sql(
ALTER TABLE transactions ADD COLUMN risk_decision TEXT NOT NULL DEFAULT '';
ALTER TABLE transactions ADD COLUMN risk_rule TEXT NOT NULL DEFAULT '';
CREATE INDEX review_holds ON transactions (sequence) WHERE risk_decision = 'review';
)sql",
    // Version 13: the keys by which holds are found, in a table of their own, one row
    // per committed hold, instead of four partial indexes on transactions. SQLite opens
    // every index of a table for each insert, partial or not: the four cost a transfer,
    // which writes none of them, about 4,000 instructions of its ~38,000 (an eleventh).
    // `pending` follows hold_status = 'pending' (the hold's capture, void or expiry
    // clears it), `review` is risk_decision = 'review'.
    R"sql(
CREATE TABLE hold_keys (
  sequence INTEGER PRIMARY KEY,
  source_account TEXT NOT NULL,
  destination_account TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  pending INTEGER NOT NULL,
  review INTEGER NOT NULL
);
INSERT INTO hold_keys (sequence, source_account, destination_account, expires_at, pending, review)
  SELECT sequence, source_account, destination_account, expires_at, hold_status IS 'pending',
         risk_decision = 'review'
  FROM transactions WHERE type = 'hold' AND status = 'committed';
CREATE INDEX hold_keys_by_source ON hold_keys (source_account, sequence);
CREATE INDEX hold_keys_by_destination ON hold_keys (destination_account, sequence);
CREATE INDEX hold_keys_overdue ON hold_keys (expires_at) WHERE pending = 1;
CREATE INDEX hold_keys_review ON hold_keys (sequence) WHERE pending = 1 AND review = 1;
DROP INDEX holds_by_source;
DROP INDEX holds_by_destination;
DROP INDEX pending_holds_by_expiry;
DROP INDEX review_holds;
)sql",
    // Version 14 (storage/sqlite/event_rows.h): a transaction's event whose row says its
    // parties' balances and versions after it keeps that row's sequence, and in its body
    // only the parties' available amounts ("" when they equal the balances); the feed
    // renders the rest from the row. NULL: the body is whole (rows before version 14,
    // and every other event).
    R"sql(
ALTER TABLE events ADD COLUMN sequence INTEGER;
)sql",
};

}  // namespace

int schema_version_of_build() { return static_cast<int>(kMigrations.size()); }

Result<int> schema_version(Connection& connection) {
  Statement s;
  if (auto status = s.prepare(connection, "PRAGMA user_version"); !status.ok()) {
    return status.error();
  }
  const int rc = s.step();
  if (rc != SQLITE_ROW) return s.error(rc, "read schema version");
  return static_cast<int>(s.int64(0));
}

Result<std::pair<int, int>> run_migrations(Connection& connection) {
  auto before = schema_version(connection);
  if (!before.ok()) return before.error();
  const int target = schema_version_of_build();
  if (before.value() > target) {
    return Error{Code::internal, "schema version " + std::to_string(before.value()) +
                                     " is newer than this build's " + std::to_string(target)};
  }
  for (int version = before.value(); version < target; ++version) {
    const std::string sql = std::string("BEGIN IMMEDIATE;") + kMigrations[version] +
                            "PRAGMA user_version = " + std::to_string(version + 1) + ";COMMIT;";
    if (auto status = connection.exec(sql); !status.ok()) {
      (void)connection.exec("ROLLBACK");
      return status.error();
    }
  }
  return std::pair{before.value(), target};
}

Status configure(Connection& connection, bool synchronous_full) {
  std::string pragmas = "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL;";
  pragmas += synchronous_full ? "PRAGMA synchronous = FULL;" : "PRAGMA synchronous = NORMAL;";
  pragmas += "PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;";
  return connection.exec(pragmas);
}

}  // namespace balanced::storage::sqlite
