#include "storage/mysql/mysql_store.h"

#include <array>
#include <atomic>
#include <cassert>
#include <chrono>
#include <limits>

#include "storage/batch.h"
#include "storage/mysql/audit_sealer.h"
#include "storage/mysql/batch_writer.h"
#include "storage/mysql/schema.h"
#include "storage/rows.h"

namespace balanced::storage {

using mysql::Connection;
using mysql::Pool;
using mysql::Rows;

namespace {

std::vector<std::string> session_statements(int lock_wait_timeout_s, bool autocommit) {
  return {
      "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
      "SET SESSION innodb_lock_wait_timeout = " + std::to_string(lock_wait_timeout_s),
      std::string("SET SESSION autocommit = ") + (autocommit ? "1" : "0"),
  };
}

// The readers' connections: the reads' own bound on a silent database.
mysql::ConnectionConfig reader_config(const MysqlOptions& o) {
  mysql::ConnectionConfig config = o.connection;
  config.read_timeout_s = std::max(1u, o.reader_timeout_s);
  config.write_timeout_s = std::max(1u, o.reader_timeout_s);
  return config;
}

}  // namespace

struct MysqlStore::Impl {
  explicit Impl(const MysqlOptions& o)
      : options(o),
        readers(reader_config(o), o.read_connections_max,
                std::chrono::milliseconds(o.pool_wait_ms_max),
                session_statements(o.lock_wait_timeout_s, true)),
        committers(o.connection, o.committer_connections,
                   std::chrono::milliseconds(o.pool_wait_ms_max),
                   session_statements(o.lock_wait_timeout_s, false)),
        sealer(o.connection, 1, std::chrono::milliseconds(o.pool_wait_ms_max),
               session_statements(o.lock_wait_timeout_s, false)),
        audit(o.rows_per_statement_max) {}

  // Learns, once, whether multi-row inserts get consecutive ids on this server.
  Status learn_server(Connection& c) {
    if (server_known.load(std::memory_order_acquire)) return {};
    auto rows = c.query("SELECT @@innodb_autoinc_lock_mode");
    if (!rows.ok()) return Status(rows.error());
    const int64_t mode = rows.value().next() ? rows.value().int64(0) : 2;
    consecutive_ids.store(mode <= 1, std::memory_order_relaxed);
    server_known.store(true, std::memory_order_release);
    return {};
  }

  Status check_schema(Connection& c) {
    if (schema_current.load(std::memory_order_acquire)) return {};
    auto version = mysql::read_schema_version(c);
    if (!version.ok()) return version.status();
    if (version.value() < mysql_schema_version()) {
      return Status(Code::unavailable,
                    "database schema version " + std::to_string(version.value()) +
                        " is older than this build's " + std::to_string(mysql_schema_version()) +
                        ": run `balancectl migrate`");
    }
    schema_current.store(true, std::memory_order_release);
    return {};
  }

  // An account's committed rows matching `filter` (page_sql), a page of them.
  Result<HistoryPage> read_page(std::string_view number, std::optional<int64_t> before_sequence, size_t limit,
                                std::string_view filter);

  template <typename Read>
  auto read_one(std::string sql, std::string_view key, Error missing, Read read)
      -> Result<decltype(read(std::declval<const Rows&>()))>;

  const MysqlOptions options;
  Pool readers;
  Pool committers;
  Pool sealer;  // its own connection: sealing never takes one from the committers
  std::atomic<bool> server_known{false};
  std::atomic<bool> consecutive_ids{false};
  std::atomic<bool> schema_current{false};
  mysql::AuditSealer audit;
  mysql::DebitWindows debit_windows;  // the risk rules' velocity, kept by this replica
};

Result<std::unique_ptr<MysqlStore>> open_mysql_store(const MysqlOptions& options) {
  if (options.committer_connections == 0 || options.read_connections_max == 0 ||
      options.rows_per_statement_max == 0) {
    return Error{Code::invalid_request, "MySQL pool sizes and row bounds must be positive"};
  }
  return std::unique_ptr<MysqlStore>(new MysqlStore(std::make_unique<MysqlStore::Impl>(options)));
}

MysqlStore::MysqlStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MysqlStore::~MysqlStore() = default;

size_t MysqlStore::apply_concurrency() const { return impl_->options.committer_connections; }

Result<core::BatchEffects> MysqlStore::apply(std::span<const core::Operation> operations,
                                             int64_t now_ms, ApplyTimings& timings) {
  auto lease = impl_->committers.acquire();
  if (!lease.ok()) return lease.error();
  Connection& c = *lease.value();
  if (auto s = impl_->check_schema(c); !s.ok()) return s.error();
  if (auto s = impl_->learn_server(c); !s.ok()) return s.error();
  // Optimistic first: almost every transaction id is new, so the batch skips the
  // idempotency lookup and lets the unique key catch a repeated id (a client retry, or a
  // replica that committed the same id first). Then it runs again, looking every id up.
  const bool consecutive = impl_->consecutive_ids.load(std::memory_order_relaxed);
  auto attempt = [&](bool look_up_ids) {
    mysql::BatchWriter batch(c, impl_->options.rows_per_statement_max, consecutive, look_up_ids, impl_->debit_windows,
                             timings);
    // On success the batch has committed (its last round trip ends with COMMIT).
    auto effects = run_batch(batch, operations, now_ms);
    if (!effects.ok() && !c.exec("ROLLBACK").ok()) c.discard();
    return effects;
  };
  auto effects = attempt(false);
  if (!effects.ok() && !c.broken() && mysql::is_duplicate_key(c.last_error())) {
    effects = attempt(true);
  }
  return effects;
}

// Runs `sql` + the quoted key on a reader connection: the first row, read by `read`, or
// `missing` when there is none.
template <typename Read>
auto MysqlStore::Impl::read_one(std::string sql, std::string_view key, Error missing, Read read)
    -> Result<decltype(read(std::declval<const Rows&>()))> {
  auto lease = readers.acquire();
  if (!lease.ok()) return lease.error();
  lease.value()->append_quoted(sql, key);
  auto rows = lease.value()->query(sql);
  if (!rows.ok()) return rows.error();
  if (!rows.value().next()) return missing;
  return read(rows.value());
}

Result<core::Account> MysqlStore::account(std::string_view number) {
  return impl_->read_one(
      "SELECT " + account_columns() + " FROM accounts WHERE account_number = ",
      number, Error{Code::account_not_found, "account " + std::string(number) + " does not exist"},
      read_account<Rows>);
}

Result<core::Transaction> MysqlStore::transaction(std::string_view id) {
  return impl_->read_one(
      "SELECT " + transaction_columns() + " FROM transactions WHERE transaction_id = ",
      id, Error{Code::not_found, "transaction " + std::string(id) + " does not exist"},
      read_transaction<Rows>);
}

namespace {

// An account's committed rows (matching `filter`, "" or " AND ..."), newest first, with
// sequence < before, limit + 1 of them. Each side walks its (account, sequence) index
// newest first; the union takes the newest of both.
std::string page_sql(Connection& c, std::string_view number, std::optional<int64_t> before_sequence, size_t limit,
                     std::string_view filter) {
  const int64_t before = before_sequence.value_or(std::numeric_limits<int64_t>::max());
  std::string sql;
  for (const char* side : {"source_account", "destination_account"}) {
    sql += sql.empty() ? "SELECT * FROM ((SELECT " : " UNION ALL (SELECT ";
    sql += transaction_columns();
    sql += " FROM transactions WHERE ";
    sql += side;
    sql += " = ";
    c.append_quoted(sql, number);
    sql += " AND sequence < " + std::to_string(before) + " AND status = 'committed'";
    sql += filter;
    sql += " ORDER BY sequence DESC LIMIT " + std::to_string(limit + 1) + ")";
  }
  sql += ") AS page ORDER BY sequence DESC LIMIT " + std::to_string(limit + 1);
  return sql;
}

}  // namespace

Result<HistoryPage> MysqlStore::Impl::read_page(std::string_view number, std::optional<int64_t> before_sequence,
                                                size_t limit, std::string_view filter) {
  auto lease = readers.acquire();
  if (!lease.ok()) return lease.error();
  Connection& c = *lease.value();
  auto rows = c.query(page_sql(c, number, before_sequence, limit, filter));
  if (!rows.ok()) return rows.error();
  std::vector<core::Transaction> read;
  while (rows.value().next()) read.push_back(read_transaction(rows.value()));
  return page_of(std::move(read), limit);
}

// The (account, sequence) indexes filtered by type: an account's holds cost a walk of its
// rows back to the page's oldest hold (docs/OPERATIONS.md, "Holds and refunds").
Result<HistoryPage> MysqlStore::holds(std::string_view number, std::optional<int64_t> before_sequence,
                                     size_t limit) {
  assert(limit > 0 && limit <= history_limit_max);
  return impl_->read_page(number, before_sequence, limit, " AND type = 'hold'");
}

// The pending holds (pending_holds_by_expiry) filtered: the queue costs a read of every
// pending hold's row (docs/OPERATIONS.md, "Risk rules").
Result<HistoryPage> MysqlStore::review_holds(std::string_view rule, std::optional<int64_t> before_sequence,
                                             size_t limit) {
  assert(limit > 0 && limit <= history_limit_max);
  auto lease = impl_->readers.acquire();
  if (!lease.ok()) return lease.error();
  Connection& c = *lease.value();
  std::string sql = "SELECT " + transaction_columns() +
                    " FROM transactions WHERE hold_status = 'pending' AND risk_decision = 'review'";
  if (!rule.empty()) {
    sql += " AND risk_rule = ";
    c.append_quoted(sql, rule);
  }
  if (before_sequence) sql += " AND sequence < " + std::to_string(*before_sequence);
  sql += " ORDER BY sequence DESC LIMIT " + std::to_string(limit + 1);
  auto rows = c.query(sql);
  if (!rows.ok()) return rows.error();
  std::vector<core::Transaction> read;
  while (rows.value().next()) read.push_back(read_transaction(rows.value()));
  return page_of(std::move(read), limit);
}

Result<std::vector<std::string>> MysqlStore::overdue_holds(int64_t now_ms, size_t limit) {
  auto lease = impl_->readers.acquire();
  if (!lease.ok()) return lease.error();
  Connection& c = *lease.value();
  auto rows = c.query("SELECT transaction_id FROM transactions WHERE hold_status = 'pending' AND expires_at <= " +
                      std::to_string(now_ms) + " ORDER BY expires_at LIMIT " + std::to_string(limit));
  if (!rows.ok()) return rows.error();
  std::vector<std::string> ids;
  while (rows.value().next()) ids.push_back(rows.value().text(0));
  return ids;
}

Result<EventPage> MysqlStore::events_after(int64_t after, size_t limit) {
  auto lease = impl_->readers.acquire();
  if (!lease.ok()) return lease.error();
  Connection& c = *lease.value();
  // Commits that write events take the counter row's lock in id order, so a reader never
  // sees an event before every one below it.
  auto rows = c.query("SELECT id, type, occurred_at, body FROM events WHERE id > " + std::to_string(after) +
                      " ORDER BY id LIMIT " + std::to_string(limit));
  if (!rows.ok()) return rows.error();
  EventPage page;
  while (rows.value().next()) {
    page.events.push_back(core::StoredEvent{.id = rows.value().int64(0),
                                            .type = rows.value().text(1),
                                            .occurred_at_ms = rows.value().int64(2),
                                            .body = rows.value().text(3)});
  }
  auto oldest = c.query("SELECT COALESCE(MIN(id), 0) FROM events");
  if (!oldest.ok()) return oldest.error();
  if (oldest.value().next()) page.oldest = oldest.value().int64(0);
  return page;
}

Result<int64_t> MysqlStore::prune_events(int64_t before_ms, size_t limit, int64_t through_max) {
  auto lease = impl_->readers.acquire();
  if (!lease.ok()) return lease.error();
  Connection& c = *lease.value();
  // Replicas' clocks interleave commit times, so the prefix is cut at the first event of
  // the oldest `limit` that is not old enough, and never reaches the newest.
  auto rows = c.query("SELECT id, occurred_at FROM events ORDER BY id LIMIT " + std::to_string(limit));
  if (!rows.ok()) return rows.error();
  int64_t last_old = 0;
  while (rows.value().next()) {
    if (rows.value().int64(1) >= before_ms) break;
    last_old = rows.value().int64(0);
  }
  if (last_old == 0) return int64_t{0};
  auto newest = c.query("SELECT COALESCE(MAX(id), 0) FROM events");
  if (!newest.ok()) return newest.error();
  if (newest.value().next()) last_old = std::min(last_old, newest.value().int64(0) - 1);
  last_old = std::min(last_old, through_max);
  if (last_old <= 0) return int64_t{0};
  auto deleted = c.exec_many("DELETE FROM events WHERE id <= " + std::to_string(last_old));
  if (!deleted.ok()) return deleted.error();
  return static_cast<int64_t>(deleted.value().at(0).affected_rows);
}

Result<std::map<core::TransactionType, core::DailyTotal>> MysqlStore::flows(std::string_view number, int64_t from_day,
                                                                            int64_t to_day) {
  auto lease = impl_->readers.acquire();
  if (!lease.ok()) return lease.error();
  Connection& c = *lease.value();
  // SUM is a DECIMAL: capped to what an int64 holds (core's sums saturate too).
  std::string sql = "SELECT type, LEAST(SUM(credits), 9223372036854775807), LEAST(SUM(debits), 9223372036854775807), "
                    "LEAST(SUM(count), 9223372036854775807) FROM daily_totals WHERE account = ";
  c.append_quoted(sql, number);
  sql += " AND day BETWEEN " + std::to_string(from_day) + " AND " + std::to_string(to_day) + " GROUP BY type";
  auto rows = c.query(sql);
  if (!rows.ok()) return rows.error();
  std::map<core::TransactionType, core::DailyTotal> by_type;
  while (rows.value().next()) {
    const auto type = core::type_from_name(rows.value().text(0));
    if (!type) return Error{Code::internal, "daily_totals: unknown type " + std::string(rows.value().text(0))};
    core::add_daily_total(by_type[*type], core::DailyTotal{.credits = rows.value().int64(1),
                                                           .debits = rows.value().int64(2),
                                                           .count = rows.value().int64(3)});
  }
  return by_type;
}

Result<core::Volumes> MysqlStore::volumes(std::string_view currency, int64_t from_hour, int64_t to_hour) {
  auto lease = impl_->readers.acquire();
  if (!lease.ok()) return lease.error();
  Connection& c = *lease.value();
  std::string sql = "SELECT hour, type, LEAST(SUM(count), 9223372036854775807), LEAST(SUM(amount), 9223372036854775807) "
                    "FROM volume_totals WHERE currency = ";
  c.append_quoted(sql, currency);
  sql += " AND hour BETWEEN " + std::to_string(from_hour) + " AND " + std::to_string(to_hour) + " GROUP BY hour, type";
  auto rows = c.query(sql);
  if (!rows.ok()) return rows.error();
  core::Volumes out;
  while (rows.value().next()) {
    const auto type = core::type_from_name(rows.value().text(1));
    if (!type) return Error{Code::internal, "volume_totals: unknown type " + std::string(rows.value().text(1))};
    core::add_volume(out[core::VolumeKey{std::string(currency), rows.value().int64(0), *type}],
                     core::Volume{.count = rows.value().int64(2), .amount = rows.value().int64(3)});
  }
  return out;
}

Result<int64_t> MysqlStore::relay_position(std::string_view relay) {
  auto lease = impl_->readers.acquire();
  if (!lease.ok()) return lease.error();
  Connection& c = *lease.value();
  std::string sql = "SELECT position FROM relay_positions WHERE name = ";
  c.append_quoted(sql, relay);
  auto rows = c.query(sql);
  if (!rows.ok()) return rows.error();
  return rows.value().next() ? rows.value().int64(0) : int64_t{0};
}

Status MysqlStore::confirm_relay(std::string_view relay, int64_t position) {
  auto lease = impl_->readers.acquire();
  if (!lease.ok()) return lease.status();
  Connection& c = *lease.value();
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  std::string sql = "INSERT INTO relay_positions (name, position, updated_at) VALUES (";
  c.append_quoted(sql, relay);
  sql += "," + std::to_string(position) + "," + std::to_string(now) +
         ") ON DUPLICATE KEY UPDATE position = GREATEST(position, VALUES(position)), updated_at = VALUES(updated_at)";
  auto done = c.exec_many(sql);
  if (!done.ok()) return done.status();
  return {};
}

Result<HistoryPage> MysqlStore::history(std::string_view number,
                                        std::optional<int64_t> before_sequence, size_t limit) {
  assert(limit > 0 && limit <= history_limit_max);
  auto exists = account(number);
  if (!exists.ok()) return exists.error();
  return impl_->read_page(number, before_sequence, limit, "");
}

Result<BalanceAt> MysqlStore::balance_at(std::string_view number, int64_t at_ms) {
  auto lease = impl_->readers.acquire();
  if (!lease.ok()) return lease.error();
  Connection& c = *lease.value();
  // Each side's newest row at or before the instant, by its (account, status, created_at)
  // index; the newer of the two.
  std::string sql = "SELECT b, v, seq FROM (";
  for (const char* side : {"source", "destination"}) {
    if (std::string_view(side) == "destination") sql += " UNION ALL ";
    sql += std::string("(SELECT ") + side + "_balance_after AS b, " + side + "_version_after AS v, sequence AS seq, "
           "created_at AS at FROM transactions WHERE " + side + "_account = ";
    c.append_quoted(sql, number);
    sql += " AND status = 'committed' AND created_at <= " + std::to_string(at_ms) +
           " ORDER BY created_at DESC, sequence DESC LIMIT 1)";
  }
  sql += ") AS latest ORDER BY at DESC, seq DESC LIMIT 1";
  auto rows = c.query(sql);
  if (!rows.ok()) return rows.error();
  if (!rows.value().next()) return BalanceAt{};
  BalanceAt at{.balance = rows.value().int64(0), .version = rows.value().int64(1)};
  const int64_t sequence = rows.value().int64(2);
  if (at.version != 0) return at;
  // A row from before versions were kept: count the postings up to it.
  std::string count = "SELECT (SELECT COUNT(*) FROM transactions WHERE source_account = ";
  c.append_quoted(count, number);
  count += " AND status = 'committed' AND sequence <= " + std::to_string(sequence) +
           ") + (SELECT COUNT(*) FROM transactions WHERE destination_account = ";
  c.append_quoted(count, number);
  count += " AND status = 'committed' AND sequence <= " + std::to_string(sequence) + ")";
  auto counted = c.query(count);
  if (!counted.ok()) return counted.error();
  at.version = counted.value().next() ? counted.value().int64(0) : 0;
  return at;
}

Status MysqlStore::ping() {
  auto lease = impl_->readers.acquire();
  if (!lease.ok()) return Status(lease.error());
  impl_->schema_current.store(false, std::memory_order_release);  // look again
  return impl_->check_schema(*lease.value());
}

Status MysqlStore::scan(ScanVisitor& visitor) {
  auto opened = Connection::open(impl_->options.connection);
  if (!opened.ok()) return Status(opened.error());
  Connection& c = *opened.value();
  // One snapshot for the three scans, so that the sums balance while writers go on.
  if (auto s = c.exec("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"); !s.ok()) return s;
  if (auto s = c.exec("START TRANSACTION WITH CONSISTENT SNAPSHOT"); !s.ok()) return s;
  Status status = c.for_each_row("SELECT " + account_columns() + " FROM accounts",
                                 [&](const Rows& r) { visitor.account(read_account(r)); });
  if (status.ok()) {
    status = c.for_each_row("SELECT reference_key, transaction_id FROM unique_references", [&](const Rows& r) {
      visitor.reference_claim(core::ReferenceClaim{.key = r.text(0), .transaction_id = r.text(1)});
    });
  }
  if (status.ok()) {
    status = c.for_each_row("SELECT " + transaction_columns() +
                                " FROM transactions WHERE status = 'committed' ORDER BY sequence",
                            [&](const Rows& r) { visitor.transaction(read_transaction(r)); });
  }
  if (status.ok()) {
    status = scan_stored_reports(visitor, [&](std::string_view sql, auto&& row) { return c.for_each_row(sql, row); });
  }
  if (status.ok()) {
    status = c.for_each_row(
        "SELECT COALESCE(MIN(id), 0), COALESCE(MAX(id), 0), COUNT(*), (SELECT last_id FROM event_counter WHERE id = 1) "
        "FROM events",
        [&](const Rows& r) {
          visitor.event_span(r.int64(0), r.int64(1), r.int64(2),
                             r.null(3) ? std::nullopt : std::optional<int64_t>(r.int64(3)));
        });
  }
  if (status.ok()) {
    // In the same snapshot: records written but not chained are not visited below.
    auto unsealed = mysql::AuditSealer::unsealed(c);
    if (!unsealed.ok()) {
      status = Status(unsealed.error());
    } else if (unsealed.value() > 0) {
      visitor.audit_incomplete(unsealed.value());
    }
  }
  if (status.ok()) {
    status = c.for_each_row(
        // From the links: a linked record that was deleted reads as empty, and its hash
        // no longer matches.
        "SELECT k.chain_seq, COALESCE(r.operation_type, ''), COALESCE(r.operator, ''), "
        "COALESCE(r.operation_time, 0), COALESCE(r.detail, ''), k.prev_hash, k.hash "
        "FROM audit_link k LEFT JOIN audit_record r ON r.log_id = k.log_id ORDER BY k.chain_seq",
        [&](const Rows& r) {
          visitor.audit(core::AuditRecord{.log_id = r.int64(0),
                                          .operation_type = r.text(1),
                                          .operator_name = r.text(2),
                                          .operation_time_ms = r.int64(3),
                                          .detail = r.text(4),
                                          .prev_hash = r.text(5),
                                          .hash = r.text(6)});
        });
  }
  (void)c.exec("COMMIT");
  return status;
}

Result<SealResult> MysqlStore::seal_audit(int64_t fence, size_t records_max) {
  auto lease = impl_->sealer.acquire();
  if (!lease.ok()) return lease.error();
  Connection& c = *lease.value();
  if (auto s = impl_->check_schema(c); !s.ok()) return s.error();
  return impl_->audit.seal(c, fence, records_max);
}

Result<int64_t> MysqlStore::unsealed_audit_records() {
  auto lease = impl_->readers.acquire();
  if (!lease.ok()) return lease.error();
  return mysql::AuditSealer::unsealed(*lease.value());
}

Result<std::optional<bool>> MysqlStore::synchronous_replica() {
  auto lease = impl_->readers.acquire();
  if (!lease.ok()) return lease.error();
  // MariaDB's names, and MySQL 8.0.26+'s (source); a server with neither has no semi-sync.
  auto rows = lease.value()->query(
      "SELECT LOWER(VARIABLE_NAME), VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES "
      "WHERE VARIABLE_NAME IN ('RPL_SEMI_SYNC_MASTER_ENABLED', 'RPL_SEMI_SYNC_SOURCE_ENABLED') "
      "UNION ALL SELECT LOWER(VARIABLE_NAME), VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS "
      "WHERE VARIABLE_NAME IN ('RPL_SEMI_SYNC_MASTER_STATUS', 'RPL_SEMI_SYNC_SOURCE_STATUS')");
  if (!rows.ok()) return rows.error();
  bool enabled = false;
  bool on = false;
  while (rows.value().next()) {
    const std::string_view name = rows.value().view(0);
    const bool value = rows.value().view(1) == "ON";
    if (name.ends_with("_enabled")) enabled = enabled || value;
    if (name.ends_with("_status")) on = on || value;
  }
  if (!enabled) return std::optional<bool>();
  return std::optional<bool>(on);
}

}  // namespace balanced::storage
