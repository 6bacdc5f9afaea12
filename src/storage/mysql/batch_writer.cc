#include "storage/mysql/batch_writer.h"

#include <chrono>
#include <random>
#include <unordered_map>

#include "core/audit.h"
#include "core/reports.h"
#include "storage/mysql/statements.h"
#include "storage/rows.h"

namespace balanced::storage::mysql {
namespace {

constexpr const char* kAuditColumns = "operation_type, operator, operation_time, detail";
constexpr const char* kAuditBarrierShared = "SELECT id FROM audit_barrier WHERE id = 1 LOCK IN SHARE MODE";

// One field's value as SQL text.
void append_field(Connection&, std::string& sql, int64_t value) { append_int(sql, value); }
void append_field(Connection& c, std::string& sql, const std::string& value) { c.append_quoted(sql, value); }
void append_field(Connection& c, std::string& sql, core::AccountType value) { c.append_quoted(sql, sql_text(value)); }
void append_field(Connection& c, std::string& sql, core::AccountStatus value) {
  c.append_quoted(sql, sql_text(value));
}
void append_field(Connection& c, std::string& sql, core::TransactionType value) {
  c.append_quoted(sql, sql_text(value));
}
void append_field(Connection& c, std::string& sql, core::TransactionStatus value) {
  c.append_quoted(sql, sql_text(value));
}
template <typename Nullable>  // Code, core::HoldStatus
  requires std::is_enum_v<Nullable>
void append_nullable(Connection& c, std::string& sql, Nullable value) {
  if (const auto text = sql_text(value)) {
    c.append_quoted(sql, *text);
  } else {
    sql += "NULL";
  }
}
void append_field(Connection& c, std::string& sql, Code value) { append_nullable(c, sql, value); }
void append_field(Connection& c, std::string& sql, core::HoldStatus value) { append_nullable(c, sql, value); }

// "(v1,v2,...)" of the fields `walk` visits, but `sequence`.
template <typename Record, typename Walk>
void append_row(Connection& c, std::string& sql, const Record& record, Walk walk) {
  bool first = true;
  sql.push_back('(');
  walk(record, [&](std::string_view column, const auto& value) {
    if (column == kSequenceColumn) return;  // the database assigns it
    if (!first) sql.push_back(',');
    first = false;
    append_field(c, sql, value);
  });
  sql.push_back(')');
}

}  // namespace

Status BatchWriter::load_accounts(std::span<const std::string> numbers, core::LedgerState& state) {
  // Chunks in sorted order keep the lock order sorted.
  return for_each_chunk(numbers.size(), rows_max_, [&](size_t start, size_t end) -> Status {
    std::string sql = "SELECT " + account_columns() + " FROM accounts WHERE account_number IN ";
    append_in_list(c_, sql, numbers.subspan(start, end - start));
    sql += " ORDER BY account_number FOR UPDATE";
    auto rows = c_.query(sql);
    if (!rows.ok()) return Status(rows.error());
    while (rows.value().next()) {
      core::Account account = read_account(rows.value());
      state.accounts.emplace(account.number, std::move(account));
    }
    return {};
  });
}

Status BatchWriter::load_transactions(std::span<const std::string> ids, core::LedgerState& state) {
  if (!look_up_ids_) return {};
  return load_referenced(ids, state);
}

Status BatchWriter::load_referenced(std::span<const std::string> ids, core::LedgerState& state) {
  return for_each_chunk(ids.size(), rows_max_, [&](size_t start, size_t end) -> Status {
    std::string sql = "SELECT " + transaction_columns() + " FROM transactions WHERE transaction_id IN ";
    append_in_list(c_, sql, ids.subspan(start, end - start));
    auto rows = c_.query(sql);
    if (!rows.ok()) return Status(rows.error());
    while (rows.value().next()) {
      core::Transaction t = read_transaction(rows.value());
      std::string id = t.id;
      state.existing.insert_or_assign(std::move(id), std::move(t));
    }
    return {};
  });
}

Status BatchWriter::load_reference_owners(std::span<const std::string> keys, core::LedgerState& state) {
  return for_each_chunk(keys.size(), rows_max_, [&](size_t start, size_t end) -> Status {
    std::string sql = "SELECT reference_key, transaction_id FROM unique_references WHERE reference_key IN ";
    append_in_list(c_, sql, keys.subspan(start, end - start));
    auto rows = c_.query(sql);
    if (!rows.ok()) return Status(rows.error());
    while (rows.value().next()) state.reference_owners.emplace(rows.value().text(0), rows.value().text(1));
    return {};
  });
}

Status BatchWriter::load_velocity(std::span<const std::string> sources, int64_t now_ms, core::LedgerState& state) {
  // The sources whose windows this replica keeps read only their rows past the highest
  // sequence it saw (transactions_by_source: one short range each); the rest their day.
  std::vector<std::pair<std::string, int64_t>> kept;
  std::vector<std::string> unknown;
  for (const auto& source : sources) {
    if (auto seen = windows_.seen(source, now_ms)) {
      kept.emplace_back(source, *seen);
    } else {
      unknown.push_back(source);
    }
  }
  std::unordered_map<std::string, std::vector<DebitWindows::Row>> later;
  auto status = for_each_chunk(kept.size(), rows_max_, [&](size_t start, size_t end) -> Status {
    std::string sql = "SELECT source_account, sequence, created_at, amount, type, status FROM transactions WHERE ";
    for (size_t i = start; i < end; ++i) {
      sql += i == start ? "(source_account = " : " OR (source_account = ";
      c_.append_quoted(sql, kept[i].first);
      sql += " AND sequence > ";
      append_int(sql, kept[i].second);
      sql.push_back(')');
    }
    auto rows = c_.query(sql);
    if (!rows.ok()) return Status(rows.error());
    while (rows.value().next()) {
      const auto& r = rows.value();
      const auto type = core::type_from_name(r.view(4));
      const bool debit = type && core::counts_as_debit(*type) &&
                         r.view(5) == sql_text(core::TransactionStatus::committed);
      later[r.text(0)].push_back(DebitWindows::Row{
          .sequence = r.int64(1), .created_at_ms = r.int64(2), .amount = r.int64(3), .debit = debit});
    }
    return {};
  });
  if (!status.ok()) return status;
  for (const auto& [source, seen] : kept) {
    if (auto velocity = windows_.extend(source, seen, later[source], now_ms)) {
      state.velocity[source] = *velocity;
    } else {
      unknown.push_back(source);  // dropped meanwhile: read its day
    }
  }
  if (unknown.empty()) return {};
  std::string types;
  for (int t = 0; t <= static_cast<int>(core::last_transaction_type); ++t) {
    const auto type = static_cast<core::TransactionType>(t);
    if (!core::counts_as_debit(type)) continue;
    if (!types.empty()) types += ',';
    c_.append_quoted(types, sql_text(type));
  }
  return for_each_chunk(unknown.size(), rows_max_, [&](size_t start, size_t end) -> Status {
    const auto chunk = std::span<const std::string>(unknown).subspan(start, end - start);
    // The highest sequence of any row of each (transactions_by_source), then the day's
    // committed debits (transactions_by_source_time).
    std::string sql = "SELECT source_account, MAX(sequence) FROM transactions WHERE source_account IN ";
    append_in_list(c_, sql, chunk);
    sql += " GROUP BY source_account";
    auto highest = c_.query(sql);
    if (!highest.ok()) return Status(highest.error());
    std::unordered_map<std::string, int64_t> seen;
    while (highest.value().next()) seen[highest.value().text(0)] = highest.value().int64(1);
    sql = "SELECT source_account, created_at, amount FROM transactions WHERE source_account IN ";
    append_in_list(c_, sql, chunk);
    sql += " AND status = 'committed' AND created_at > ";
    append_int(sql, now_ms - core::DebitWindow::kept_ms);  // the day and the slack
    sql += " AND type IN (" + types + ")";
    auto rows = c_.query(sql);
    if (!rows.ok()) return Status(rows.error());
    std::unordered_map<std::string, std::vector<core::DebitWindow::Debit>> debits;
    while (rows.value().next()) {
      debits[rows.value().text(0)].push_back(
          core::DebitWindow::Debit{.created_at_ms = rows.value().int64(1), .amount = rows.value().int64(2)});
    }
    for (const auto& source : chunk) {
      state.velocity[source] = windows_.keep(source, std::move(debits[source]), seen[source], now_ms);
    }
    return {};
  });
}

Status BatchWriter::write(core::BatchEffects& effects) {
  std::vector<Step> steps;
  // A reference another replica took meanwhile fails here (duplicate key): the store
  // runs the batch again, which then finds the owner.
  add_insert_references(effects.reference_claims, steps);
  add_insert_accounts(effects.created, steps);
  add_update_accounts(effects.updated, steps);
  add_insert_transactions(effects.transactions, steps);
  add_update_transactions(effects.transaction_updates, steps);
  add_daily_totals(effects.transactions, steps);
  add_volumes(effects.transactions, steps);
  if (auto s = run(steps, effects); !s.ok()) return s;
  core::render_audit_and_events(effects.audit, effects.events, effects.transactions);
  steps.clear();
  add_insert_audit(effects.audit, steps);
  add_insert_events(effects, steps);
  steps.push_back(Step{"COMMIT", Step::Kind::plain, 0, 0});
  const auto durable_from = std::chrono::steady_clock::now();
  Status committed = run(steps, effects);
  timings_.durable_seconds = seconds_since(durable_from);
  return committed;
}

Status BatchWriter::run(const std::vector<Step>& steps, core::BatchEffects& effects) {
  std::vector<core::Transaction>& transactions = effects.transactions;
  if (steps.empty()) return {};
  std::string sql;
  for (const auto& step : steps) {
    if (!sql.empty()) sql.push_back(';');
    sql += step.sql;
  }
  auto results = c_.exec_many(sql);
  if (!results.ok()) return Status(results.error());
  if (results.value().size() != steps.size()) {
    return Status(Code::internal, "expected " + std::to_string(steps.size()) + " results");
  }
  for (size_t i = 0; i < steps.size(); ++i) {
    const Step& step = steps[i];
    const auto& result = results.value()[i];
    // An upsert reports 2 per updated row (1 per inserted one): every row must have
    // existed, locked by this batch.
    if (step.kind == Step::Kind::update_accounts &&
        result.affected_rows != 2 * (step.end - step.start)) {
      return Status(Code::internal, "updated accounts: " + std::to_string(result.affected_rows) +
                                        " rows affected, expected " +
                                        std::to_string(2 * (step.end - step.start)));
    }
    if (step.kind == Step::Kind::update_transaction && result.affected_rows != 1) {
      return Status(Code::internal, "updated transaction: " + std::to_string(result.affected_rows) +
                                        " rows affected, expected 1");
    }
    if (step.kind == Step::Kind::take_event_ids) {
      if (result.affected_rows != 1) return Status(Code::internal, "the event counter row is missing");
      auto id = static_cast<int64_t>(result.insert_id) - static_cast<int64_t>(effects.events.size());
      for (auto& event : effects.events) event.id = ++id;
      effects.last_event_id = id;
    }
    if (step.kind == Step::Kind::insert_transactions) {
      if (auto s = assign_sequences(transactions, step.start, step.end, result.insert_id); !s.ok()) {
        return s;
      }
    }
  }
  return {};
}

// The events take the counter's next ids in the last round trip, right before the
// COMMIT: the counter row's lock is held for that instant only. The ids come from
// LAST_INSERT_ID(), which the UPDATE sets for this session; run() reads them back.
void BatchWriter::add_insert_events(core::BatchEffects& effects, std::vector<Step>& steps) {
  if (effects.events.empty()) return;
  const auto n = static_cast<int64_t>(effects.events.size());
  std::string sql = "UPDATE event_counter SET last_id = LAST_INSERT_ID(last_id + ";
  append_int(sql, n);
  sql += ") WHERE id = 1";
  steps.push_back(Step{std::move(sql), Step::Kind::take_event_ids, 0, effects.events.size()});
  (void)for_each_chunk(effects.events.size(), rows_max_, [&](size_t start, size_t end) -> Status {
    std::string insert = "INSERT INTO events (id, type, occurred_at, body) VALUES ";
    for (size_t i = start; i < end; ++i) {
      const core::Event& event = effects.events[i];
      insert += i == start ? "(LAST_INSERT_ID() - " : ",(LAST_INSERT_ID() - ";
      append_int(insert, n - 1 - static_cast<int64_t>(i));
      insert.push_back(',');
      c_.append_quoted(insert, core::event_type(event, effects.transactions));
      insert.push_back(',');
      append_int(insert, event.occurred_at_ms);
      insert.push_back(',');
      c_.append_quoted(insert, event.body);
      insert.push_back(')');
    }
    steps.push_back(Step{std::move(insert), Step::Kind::plain, start, end});
    return {};
  });
}

void BatchWriter::add_insert_accounts(const std::vector<core::Account>& accounts, std::vector<Step>& steps) {
  (void)for_each_chunk(accounts.size(), rows_max_, [&](size_t start, size_t end) -> Status {
    std::string sql = "INSERT INTO accounts (" + account_columns() + ") VALUES ";
    append_account_rows(accounts, start, end, sql);
    steps.push_back(Step{std::move(sql), Step::Kind::plain, start, end});
    return {};
  });
}

void BatchWriter::append_account_rows(const std::vector<core::Account>& accounts, size_t start,
                                      size_t end, std::string& sql) {
  for (size_t i = start; i < end; ++i) {
    if (i > start) sql.push_back(',');
    append_row(c_, sql, accounts[i], [](const auto& a, auto&& f) { for_each_account_field(a, f); });
  }
}

// Every changed account gets its final state in one multi-row statement:
// an upsert whose rows all exist (the batch holds their locks), so each only updates.
// (One VALUES list parses and plans once; a derived table of N SELECTs, N times.)
void BatchWriter::add_update_accounts(const std::vector<core::Account>& accounts, std::vector<Step>& steps) {
  static const std::string updates =
      account_updates([](std::string_view column) { return "VALUES(" + std::string(column) + ")"; });
  (void)for_each_chunk(accounts.size(), rows_max_, [&](size_t start, size_t end) -> Status {
    std::string sql = "INSERT INTO accounts (" + account_columns() + ") VALUES ";
    append_account_rows(accounts, start, end, sql);
    sql += " ON DUPLICATE KEY UPDATE " + updates;
    steps.push_back(Step{std::move(sql), Step::Kind::update_accounts, start, end});
    return {};
  });
}

void BatchWriter::add_insert_transactions(const std::vector<core::Transaction>& transactions,
                                          std::vector<Step>& steps) {
  (void)for_each_chunk(transactions.size(), rows_max_, [&](size_t start, size_t end) -> Status {
    // The database assigns the sequence.
    std::string sql = "INSERT INTO transactions (" + transaction_columns_but_sequence() + ") VALUES ";
    for (size_t i = start; i < end; ++i) {
      if (i > start) sql.push_back(',');
      append_row(c_, sql, transactions[i], [](const auto& t, auto&& f) { for_each_transaction_field(t, f); });
    }
    steps.push_back(Step{std::move(sql), Step::Kind::insert_transactions, start, end});
    return {};
  });
}

namespace {
// "column = column + VALUES(column)", saturating at the int64 limit (as core's report sums;
// the addend is never negative): past it BIGINT arithmetic fails the whole batch.
std::string capped_add(std::string_view column) {
  const std::string c(column);
  return c + " = IF(" + c + " > 9223372036854775807 - VALUES(" + c + "), 9223372036854775807, " + c + " + VALUES(" + c +
         "))";
}
}  // namespace

// Reports: the batch's daily totals (core/reports.h), summed, added to the stored ones.
// Keys in order (a map), so two batches lock the rows they share in one order.
void BatchWriter::add_daily_totals(const std::vector<core::Transaction>& transactions, std::vector<Step>& steps) {
  core::DailyTotals daily;
  for (const auto& t : transactions) core::add_daily_totals(t, daily);
  if (daily.empty()) return;
  std::string sql = "INSERT INTO daily_totals (account, day, type, credits, debits, count) VALUES ";
  bool first = true;
  for (const auto& [key, total] : daily) {
    sql += first ? "(" : ",(";
    first = false;
    c_.append_quoted(sql, key.account);
    sql += "," + std::to_string(key.day) + ",";
    c_.append_quoted(sql, sql_text(key.type));
    sql += "," + std::to_string(total.credits) + "," + std::to_string(total.debits) + "," +
           std::to_string(total.count) + ")";
  }
  sql += " ON DUPLICATE KEY UPDATE " + capped_add("credits") + ", " + capped_add("debits") + ", " + capped_add("count");
  steps.push_back(Step{std::move(sql), Step::Kind::plain, 0, 0});
}

// The slot of volume_totals this thread's batches add to: picked at random once per
// committer thread, so the replicas' committers mostly add to rows of their own.
namespace {
constexpr unsigned kVolumeSlots = 8;
unsigned volume_slot() {
  static thread_local const unsigned slot = std::random_device{}() % kVolumeSlots;
  return slot;
}
}  // namespace

// Reports: the batch's volumes, into this thread's slot of each hour.
void BatchWriter::add_volumes(const std::vector<core::Transaction>& transactions, std::vector<Step>& steps) {
  core::Volumes volumes;
  for (const auto& t : transactions) core::add_volumes(t, volumes);
  if (volumes.empty()) return;
  std::string sql = "INSERT INTO volume_totals (currency, hour, type, slot, count, amount) VALUES ";
  bool first = true;
  for (const auto& [key, volume] : volumes) {
    sql += first ? "(" : ",(";
    first = false;
    c_.append_quoted(sql, key.currency);
    sql += "," + std::to_string(key.hour) + ",";
    c_.append_quoted(sql, sql_text(key.type));
    sql += "," + std::to_string(volume_slot()) + "," + std::to_string(volume.count) + "," +
           std::to_string(volume.amount) + ")";
  }
  sql += " ON DUPLICATE KEY UPDATE " + capped_add("count") + ", " + capped_add("amount");
  steps.push_back(Step{std::move(sql), Step::Kind::plain, 0, 0});
}

void BatchWriter::add_insert_references(const std::vector<core::ReferenceClaim>& claims, std::vector<Step>& steps) {
  (void)for_each_chunk(claims.size(), rows_max_, [&](size_t start, size_t end) -> Status {
    std::string sql = "INSERT INTO unique_references (reference_key, transaction_id) VALUES ";
    for (size_t i = start; i < end; ++i) {
      sql += i == start ? "(" : ",(";
      c_.append_quoted(sql, claims[i].key);
      sql.push_back(',');
      c_.append_quoted(sql, claims[i].transaction_id);
      sql.push_back(')');
    }
    steps.push_back(Step{std::move(sql), Step::Kind::plain, start, end});
    return {};
  });
}

// An earlier row's new state, one statement per row (a batch ends or refunds few). Every
// one changes the row: a hold ends once, a refund adds a positive amount.
void BatchWriter::add_update_transactions(const std::vector<core::Transaction>& transactions,
                                          std::vector<Step>& steps) {
  for (size_t i = 0; i < transactions.size(); ++i) {
    const core::Transaction& t = transactions[i];
    std::string sql = "UPDATE transactions SET ";
    bool first = true;
    for_each_transaction_field(t, [&](Column column, const auto& value) {
      if (!column.state) return;
      if (!first) sql += ", ";
      first = false;
      sql += column.name;
      sql += " = ";
      append_field(c_, sql, value);
    });
    sql += " WHERE sequence = ";  // the primary key
    append_int(sql, t.sequence);
    steps.push_back(Step{std::move(sql), Step::Kind::update_transaction, i, i + 1});
  }
}

// With innodb_autoinc_lock_mode 0 or 1 a multi-row INSERT gets consecutive ids from
// the first one; in mode 2 (MySQL 8's default) they may interleave with another
// writer's, so they are read back.
Status BatchWriter::assign_sequences(std::vector<core::Transaction>& transactions, size_t start,
                                     size_t end, uint64_t first_id) {
  if (consecutive_ids_) {
    for (size_t i = start; i < end; ++i) {
      transactions[i].sequence = static_cast<int64_t>(first_id) + static_cast<int64_t>(i - start);
    }
    return {};
  }
  std::string sql = "SELECT sequence, transaction_id FROM transactions WHERE transaction_id IN (";
  for (size_t i = start; i < end; ++i) {
    if (i > start) sql.push_back(',');
    c_.append_quoted(sql, transactions[i].id);
  }
  sql.push_back(')');
  auto rows = c_.query(sql);
  if (!rows.ok()) return Status(rows.error());
  std::unordered_map<std::string, int64_t> sequences;
  while (rows.value().next()) sequences.emplace(rows.value().text(1), rows.value().int64(0));
  for (size_t i = start; i < end; ++i) {
    auto it = sequences.find(transactions[i].id);
    if (it == sequences.end()) return Status(Code::internal, "inserted transaction not found");
    transactions[i].sequence = it->second;
  }
  return {};
}

// The share lock on the barrier comes first and is held to the COMMIT: the sealer,
// once it holds the barrier alone, knows every record id handed out so far is
// committed or rolled back (AuditSealer).
void BatchWriter::add_insert_audit(const std::vector<core::AuditRecord>& audit, std::vector<Step>& steps) {
  if (audit.empty()) return;
  steps.push_back(Step{kAuditBarrierShared, Step::Kind::plain, 0, 0});
  (void)for_each_chunk(audit.size(), rows_max_, [&](size_t start, size_t end) -> Status {
    std::string sql = std::string("INSERT INTO audit_record (") + kAuditColumns + ") VALUES ";
    for (size_t i = start; i < end; ++i) {
      const auto& r = audit[i];
      sql += i == start ? "(" : ",(";
      c_.append_quoted(sql, r.operation_type);
      sql.push_back(',');
      c_.append_quoted(sql, r.operator_name);
      sql.push_back(',');
      append_int(sql, r.operation_time_ms);
      sql.push_back(',');
      c_.append_quoted(sql, r.detail);
      sql.push_back(')');
    }
    steps.push_back(Step{std::move(sql), Step::Kind::plain, start, end});
    return {};
  });
}

}  // namespace balanced::storage::mysql
