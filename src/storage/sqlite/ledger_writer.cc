#include "storage/sqlite/ledger_writer.h"

#include <algorithm>
#include <optional>
#include <unordered_map>
#include <vector>

#include "core/audit.h"
#include "core/hold_key.h"
#include "core/json_codec.h"
#include "core/reports.h"
#include "storage/rows.h"
#include "storage/sqlite/event_rows.h"

namespace balanced::storage::sqlite {
namespace {

// "?1, ?2, ..., ?n"
std::string placeholders(int n) {
  std::string out;
  for (int i = 1; i <= n; ++i) out += (i > 1 ? ", ?" : "?") + std::to_string(i);
  return out;
}

int count_columns(const std::string& columns) {
  return static_cast<int>(std::count(columns.begin(), columns.end(), ',')) + 1;
}

// One field's value into parameter `index`.
void bind_field(Statement& s, int index, int64_t value) { s.bind(index, value); }
void bind_field(Statement& s, int index, const std::string& value) { s.bind(index, value); }
void bind_field(Statement& s, int index, core::AccountType value) { s.bind(index, sql_text(value)); }
void bind_field(Statement& s, int index, core::AccountStatus value) { s.bind(index, sql_text(value)); }
void bind_field(Statement& s, int index, core::TransactionType value) { s.bind(index, sql_text(value)); }
void bind_field(Statement& s, int index, core::TransactionStatus value) { s.bind(index, sql_text(value)); }
template <typename Nullable>  // Code, core::HoldStatus
  requires std::is_enum_v<Nullable>
void bind_nullable(Statement& s, int index, Nullable value) {
  if (const auto text = sql_text(value)) {
    s.bind(index, *text);
  } else {
    s.bind_null(index);
  }
}
void bind_field(Statement& s, int index, core::HoldStatus value) { bind_nullable(s, index, value); }
void bind_field(Statement& s, int index, Code value) { bind_nullable(s, index, value); }

// "UPDATE transactions SET <state column> = ?1, ... WHERE sequence = ?n": by the rowid, no
// index descent.
std::string update_state_sql() {
  int parameter = 0;
  const std::string assignments =
      transaction_state_updates([&parameter](std::string_view) { return "?" + std::to_string(++parameter); });
  return "UPDATE transactions SET " + assignments + " WHERE sequence = ?" + std::to_string(parameter + 1);
}

// "column = column + excluded.column", saturating at the int64 limit (a report's sums, as
// core::add_daily_total: the one addend is never negative).
std::string capped_add(std::string_view column) {
  const std::string c(column);
  return c + " = CASE WHEN " + c + " > 9223372036854775807 - excluded." + c + " THEN 9223372036854775807 ELSE " + c +
         " + excluded." + c + " END";
}

}  // namespace

Status LedgerWriter::open(const std::string& path, const ConnectionOptions& options) {
  if (auto s = db_.open(path, SQLITE_OPEN_READWRITE, options); !s.ok()) return s;
  const std::pair<Statement*, std::string> statements[] = {
      {&begin_, "BEGIN IMMEDIATE"},
      {&commit_, "COMMIT"},
      {&rollback_, "ROLLBACK"},
      {&read_applied_, "SELECT value FROM meta WHERE name = 'applied_batch'"},
      {&audit_head_, "SELECT hash FROM audit_log ORDER BY log_id DESC LIMIT 1"},
      {&write_applied_, "UPDATE meta SET value = ?1 WHERE name = 'applied_batch'"},
      // One statement inserts a new account and rewrites a changed one.
      {&write_account_, "INSERT INTO accounts (" + account_columns() + ") VALUES (" +
                            placeholders(count_columns(account_columns())) +
                            ") ON CONFLICT (account_number) DO UPDATE SET " +
                            account_updates([](std::string_view column) { return "excluded." + std::string(column); })},
      {&insert_transaction_, "INSERT INTO transactions (" + transaction_columns() + ") VALUES (" +
                                 placeholders(count_columns(transaction_columns())) + ")"},
      // Most rows (transfers): the rare columns left to their defaults, 9 binds fewer.
      {&insert_common_transaction_, "INSERT INTO transactions (" + transaction_common_columns() + ") VALUES (" +
                                        placeholders(count_columns(transaction_common_columns())) + ")"},
      // An earlier row's new state (a hold ended, a transfer refunded).
      {&update_transaction_, update_state_sql()},
      {&insert_hold_key_,
       "INSERT INTO hold_keys (sequence, source_account, destination_account, expires_at, pending, review) "
       "VALUES (?1, ?2, ?3, ?4, ?5, ?6)"},
      {&update_hold_key_, "UPDATE hold_keys SET pending = ?2 WHERE sequence = ?1"},
      {&insert_reference_, "INSERT INTO unique_references (reference_key, transaction_id) VALUES (?1, ?2)"},
      {&insert_event_,
       "INSERT INTO events (id, type, occurred_at, body, audit_log_id, sequence) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"},
      // A commit time's last sequence (schema 6): what a balance at an instant is bounded by.
      {&write_commit_time_,
       "INSERT INTO commit_times (created_at, last_sequence) VALUES (?1, ?2) ON CONFLICT (created_at) DO "
       "UPDATE SET last_sequence = max(last_sequence, excluded.last_sequence)"},
      // Reports (schema 10): one upsert per account, day and type the chunk moved.
      {&add_daily_total_,
       "INSERT INTO daily_totals (account, day, type, credits, debits, count) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
       "ON CONFLICT (account, day, type) DO UPDATE SET " + capped_add("credits") + ", " + capped_add("debits") +
           ", " + capped_add("count")},
      {&add_volume_,
       "INSERT INTO volume_totals (currency, hour, type, count, amount) VALUES (?1, ?2, ?3, ?4, ?5) "
       "ON CONFLICT (currency, hour, type) DO UPDATE SET " + capped_add("count") + ", " + capped_add("amount")},
      {&insert_audit_,
       "INSERT INTO audit_log (log_id, operation_type, operator, operation_time, detail, "
       "prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"},
  };
  for (const auto& [statement, sql] : statements) {
    if (auto s = statement->prepare(db_, sql); !s.ok()) return s;
  }
  return {};
}

Result<int64_t> LedgerWriter::applied_batch() {
  Use s(read_applied_);
  const int rc = s->step();
  if (rc != SQLITE_ROW) return s->error(rc, "read applied batch");
  return s->int64(0);
}

Status LedgerWriter::materialize(BatchesView batches) {
  {
    Use begin(begin_);
    if (const int rc = begin->step(); rc != SQLITE_DONE) return Status(begin->error(rc, "begin"));
  }
  Status status = write(batches);
  if (status.ok()) {
    Use commit(commit_);
    const int rc = commit->step();
    if (rc == SQLITE_DONE) return {};
    status = Status(commit->error(rc, "commit"));
  }
  if (!sqlite3_get_autocommit(db_.get())) {
    Use rollback(rollback_);
    (void)rollback->step();
  }
  return status;
}

Status LedgerWriter::write(BatchesView batches) {
  auto applied = applied_batch();
  if (!applied.ok()) return applied.status();
  int64_t last = applied.value();
  // Each account is written once per chunk, in its final state.
  std::unordered_map<std::string, const core::Account*> accounts;
  for (const auto& [batch, effects] : batches) {
    if (batch <= last) continue;  // applied already (recovery racing the materializer)
    for (const auto& a : effects->created) accounts[a.number] = &a;
    for (const auto& a : effects->updated) accounts[a.number] = &a;
  }
  for (const auto& [number, account] : accounts) {
    Use s(write_account_);
    int index = 1;
    for_each_account_field(*account, [&](std::string_view, const auto& value) { bind_field(*s, index++, value); });
    if (const int rc = s->step(); rc != SQLITE_DONE) return Status(s->error(rc, "write account"));
  }
  std::string head;
  {
    Use s(audit_head_);
    const int rc = s->step();
    if (rc == SQLITE_ROW) {
      head = s->blob(0);
    } else if (rc != SQLITE_DONE) {
      return Status(s->error(rc, "read audit head"));
    }
  }
  std::vector<core::AuditRecord> audit;
  std::vector<int64_t> row_log_ids;  // by row of a batch: its audit record's log id
  // The commit time being written and its last sequence: one commit_times row per
  // time, written when the time changes and at the end.
  std::optional<CommitTime> time;
  core::UnorderedDailyTotals daily;  // the chunk's, summed before they are written
  core::Volumes volumes;
  for (const auto& [batch, effects] : batches) {
    if (batch <= last) continue;
    for (const auto& t : effects->transactions) {
      if (auto s = insert_transaction(t); !s.ok()) return s;
      if (auto s = insert_hold_key(t); !s.ok()) return s;
      core::add_daily_totals(t, daily);
      core::add_volumes(t, volumes);
      if (time && time->created_at_ms != t.created_at_ms) {
        if (auto s = write_commit_time(*time); !s.ok()) return s;
        time.reset();
      }
      if (!time) time = CommitTime{t.created_at_ms, t.sequence};
      time->last_sequence = std::max(time->last_sequence, t.sequence);
    }
    for (const auto& t : effects->transaction_updates) {
      if (auto s = update_transaction(t); !s.ok()) return s;
      if (auto s = update_hold_key(t); !s.ok()) return s;
    }
    for (const auto& claim : effects->reference_claims) {
      Use s(insert_reference_);
      s->bind(1, claim.key);
      s->bind(2, claim.transaction_id);
      if (const int rc = s->step(); rc != SQLITE_DONE) return Status(s->error(rc, "insert reference"));
    }
    // A transaction's event names the audit record of its row, whose detail is the row's
    // JSON, and leaves the row out of its own body (schema 8); when the row says its
    // balances too, it keeps the row's sequence and only what the row lacks (schema 14,
    // event_rows.h).
    row_log_ids.assign(effects->transactions.size(), 0);
    for (const auto& record : effects->audit) {
      if (record.transaction_index >= 0) row_log_ids[static_cast<size_t>(record.transaction_index)] = record.log_id;
    }
    for (const auto& event : effects->events) {
      const std::string type = core::event_type(event, effects->transactions);
      const core::Transaction* row = event.kind == core::EventKind::transaction
                                         ? &effects->transactions[static_cast<size_t>(event.transaction_index)]
                                         : nullptr;
      const int64_t log_id = row ? row_log_ids[static_cast<size_t>(event.transaction_index)] : 0;
      std::optional<std::string> compact;
      if (log_id > 0) compact = compact_event_body(event, *row);
      const std::string body =
          compact ? std::move(*compact)
                  : core::encode_event(event, type, row && log_id == 0 ? core::encode_transaction(*row) : std::string());
      Use s(insert_event_);
      s->bind(1, event.id);
      s->bind(2, type);
      s->bind(3, event.occurred_at_ms);
      s->bind(4, body);
      if (log_id > 0) {
        s->bind(5, log_id);
      } else {
        s->bind_null(5);
      }
      if (compact) {
        s->bind(6, row->sequence);
      } else {
        s->bind_null(6);
      }
      if (const int rc = s->step(); rc != SQLITE_DONE) return Status(s->error(rc, "insert event"));
    }
    audit = effects->audit;
    head = core::seal_audit(audit, effects->transactions, std::move(head));
    for (const auto& r : audit) {
      Use s(insert_audit_);
      s->bind(1, r.log_id);
      s->bind(2, r.operation_type);
      s->bind(3, r.operator_name);
      s->bind(4, r.operation_time_ms);
      s->bind(5, r.detail);
      s->bind_blob(6, r.prev_hash);
      s->bind_blob(7, r.hash);
      if (const int rc = s->step(); rc != SQLITE_DONE) return Status(s->error(rc, "insert audit"));
    }
    last = batch;
  }
  if (time) {
    if (auto s = write_commit_time(*time); !s.ok()) return s;
  }
  for (const auto& [key, total] : daily) {
    Use s(add_daily_total_);
    s->bind(1, key.account);
    s->bind(2, key.day);
    s->bind(3, sql_text(key.type));
    s->bind(4, total.credits);
    s->bind(5, total.debits);
    s->bind(6, total.count);
    if (const int rc = s->step(); rc != SQLITE_DONE) return Status(s->error(rc, "add daily total"));
  }
  for (const auto& [key, volume] : volumes) {
    Use s(add_volume_);
    s->bind(1, key.currency);
    s->bind(2, key.hour);
    s->bind(3, sql_text(key.type));
    s->bind(4, volume.count);
    s->bind(5, volume.amount);
    if (const int rc = s->step(); rc != SQLITE_DONE) return Status(s->error(rc, "add volume"));
  }
  Use s(write_applied_);
  s->bind(1, last);
  if (const int rc = s->step(); rc != SQLITE_DONE) return Status(s->error(rc, "write watermark"));
  return {};
}

Status LedgerWriter::write_commit_time(const CommitTime& time) {
  Use s(write_commit_time_);
  s->bind(1, time.created_at_ms);
  s->bind(2, time.last_sequence);
  if (const int rc = s->step(); rc != SQLITE_DONE) return Status(s->error(rc, "write commit time"));
  return {};
}

Status LedgerWriter::update_transaction(const core::Transaction& t) {
  Use s(update_transaction_);
  int index = 1;
  for_each_transaction_field(t, [&](Column column, const auto& value) {
    if (column.state) bind_field(*s, index++, value);
  });
  s->bind(index, t.sequence);
  if (const int rc = s->step(); rc != SQLITE_DONE) return Status(s->error(rc, "update transaction"));
  if (sqlite3_changes(db_.get()) != 1) return Status(Code::internal, "update transaction " + t.id + ": no such row");
  return {};
}

Status LedgerWriter::insert_hold_key(const core::Transaction& t) {
  const auto key = core::hold_key_of(t);
  if (!key) return {};
  Use s(insert_hold_key_);
  s->bind(1, key->sequence);
  s->bind(2, key->source);
  s->bind(3, key->destination);
  s->bind(4, key->expires_at_ms);
  s->bind(5, int64_t{key->pending});
  s->bind(6, int64_t{key->review});
  if (const int rc = s->step(); rc != SQLITE_DONE) return Status(s->error(rc, "insert hold key"));
  return {};
}

Status LedgerWriter::update_hold_key(const core::Transaction& t) {
  const auto key = core::hold_key_of(t);
  if (!key) return {};
  Use s(update_hold_key_);
  s->bind(1, key->sequence);
  s->bind(2, int64_t{key->pending});
  if (const int rc = s->step(); rc != SQLITE_DONE) return Status(s->error(rc, "update hold key"));
  if (sqlite3_changes(db_.get()) != 1) return Status(Code::internal, "update hold key " + t.id + ": no such row");
  return {};
}

Status LedgerWriter::insert_transaction(const core::Transaction& t) {
  const bool common = rare_fields_default(t);
  Use s(common ? insert_common_transaction_ : insert_transaction_);
  int index = 1;
  for_each_transaction_field(t, [&](Column column, const auto& value) {
    if (!(common && column.rare)) bind_field(*s, index++, value);
  });
  if (const int rc = s->step(); rc != SQLITE_DONE) return Status(s->error(rc, "insert transaction"));
  return {};
}

}  // namespace balanced::storage::sqlite
