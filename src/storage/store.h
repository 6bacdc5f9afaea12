// The storage seam. Concrete stores are chosen in apps/*/main.cc only.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "core/codes.h"
#include "core/hold_key.h"
#include "core/ledger.h"
#include "core/reports.h"
#include "core/types.h"

namespace balanced::storage {

inline constexpr size_t history_limit_max = 500;

struct HistoryPage {
  std::vector<core::Transaction> transactions;  // newest first
  std::optional<int64_t> next_cursor;           // sequence to pass as before_sequence
};

// A page of at most `limit` from `rows` (read with limit + 1, from one or more places):
// newest first, each sequence once, and the cursor when more remain.
HistoryPage page_of(std::vector<core::Transaction> rows, size_t limit);

// An account's posted balance and version after its last change committed at or before
// an instant (DESIGN.md section 10, "Point in time"); zeros before its first.
struct BalanceAt {
  int64_t balance = 0;
  int64_t version = 0;
};

// Receives every row of a store, for reconciliation.
class ScanVisitor {
 public:
  virtual ~ScanVisitor() = default;
  virtual void account(const core::Account& account) = 0;
  // The references taken under --unique-references; before the transactions.
  virtual void reference_claim(const core::ReferenceClaim& claim) { (void)claim; }
  virtual void transaction(const core::Transaction& transaction) = 0;  // committed, in order
  // After the transactions, from the same snapshot: the stored reports (DESIGN.md section
  // 11), a row at a time, and the change feed's kept ids.
  virtual void daily_total(const core::DailyKey& key, const core::DailyTotal& total) = 0;
  virtual void volume(const core::VolumeKey& key, const core::Volume& volume) = 0;
  virtual void event_span(int64_t oldest, int64_t newest, int64_t count, std::optional<int64_t> counter) = 0;
  // An event a store renders from its transaction's row (SQLite, schema 14) that cannot
  // be: its row is not there, or what it keeps does not read.
  virtual void unreadable_event(int64_t id, const std::string& detail) {
    (void)id;
    (void)detail;
  }
  virtual void audit(const core::AuditRecord& record) = 0;             // in log order
  // Called before audit() when the snapshot holds records not yet chained (and so not
  // visited): `unsealed` of them.
  virtual void audit_incomplete(int64_t unsealed) { (void)unsealed; }
  // A store that keeps the holds' keys apart from their rows (SQLite's hold_keys) says so,
  // then visits every key, after the transactions and from the same snapshot.
  virtual void keeps_hold_keys() {}
  virtual void hold_key(const core::HoldKey& key) { (void)key; }
};

// The change feed (DESIGN.md section 11): GET /events reads at most this many a page.
inline constexpr size_t events_limit_max = 1000;

// Events after an id, oldest first.
struct EventPage {
  std::vector<core::StoredEvent> events;
  // The oldest event kept (0: none yet): an `after` below oldest - 1 asks for events no
  // longer kept.
  int64_t oldest = 0;
};

// Seconds from `start` to now, on the steady clock.
inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Where one apply() spent its time, for the engine's per-stage latency histograms. A
// store fills in what it can tell apart; the rest of apply() counts as deciding.
struct ApplyTimings {
  // Waiting for room before the batch could start (a store that bounds how much is
  // committed but not yet materialized).
  double backpressure_seconds = 0;
  // The durable commit itself: SQLite's COMMIT with its fsync, MySQL's last round trip
  // (the audit rows and COMMIT).
  double durable_seconds = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // Applies a batch of operations in ONE database transaction and commits it durably
  // before returning. On error nothing of the batch is written; Code::unavailable means
  // the error is transient and the batch may be retried as it is. The effects returned
  // carry the outcomes and the created and updated accounts; a store may keep the rest
  // (transactions, audit records) for itself and return them empty.
  // `timings` receives where the time went. REQUIRES: at most apply_concurrency() calls
  // at a time.
  virtual Result<core::BatchEffects> apply(std::span<const core::Operation> operations,
                                           int64_t now_ms, ApplyTimings& timings) = 0;
  // The same, when nobody asks where the time went.
  Result<core::BatchEffects> apply(std::span<const core::Operation> operations, int64_t now_ms) {
    ApplyTimings ignored;
    return apply(operations, now_ms, ignored);
  }

  // Reads. Thread-safe; they never wait for apply() to finish.
  virtual Result<core::Account> account(std::string_view number) = 0;
  virtual Result<core::Transaction> transaction(std::string_view id) = 0;
  // Committed transactions of an account, newest first, with sequence < before_sequence.
  virtual Result<HistoryPage> history(std::string_view number,
                                      std::optional<int64_t> before_sequence, size_t limit) = 0;

  // The account's balance and version after the last committed transaction whose commit
  // time (created_at) is at or before `at_ms`: one index probe per side, O(log n), from
  // the balance-after and version-after columns (a row from before versions were kept
  // has its version counted instead). Does not check that the account exists.
  virtual Result<BalanceAt> balance_at(std::string_view number, int64_t at_ms) = 0;

  // Committed holds of an account (as source or destination), newest first, with
  // sequence < before_sequence, each in its newest state. Does not check that the
  // account exists.
  virtual Result<HistoryPage> holds(std::string_view number, std::optional<int64_t> before_sequence,
                                    size_t limit) = 0;
  // Ids of holds still pending whose expires_at <= now_ms, the oldest expiry first, at
  // most `limit` (the sweeper's). A hold ended a moment ago may still be listed (the
  // committer decides: an expire of a hold no longer pending changes nothing).
  virtual Result<std::vector<std::string>> overdue_holds(int64_t now_ms, size_t limit) = 0;
  // Holds a risk review made (DESIGN.md section 11) that are still pending, of `rule`
  // ("" for any), newest first, with sequence < before_sequence: an operator's queue.
  virtual Result<HistoryPage> review_holds(std::string_view rule, std::optional<int64_t> before_sequence,
                                           size_t limit) = 0;

  // Committed events with id > after, oldest first, at most `limit`; never waits for
  // apply(). Events are numbered 1, 2, ... without gaps, in commit order.
  virtual Result<EventPage> events_after(int64_t after, size_t limit) = 0;
  // Deletes the oldest events committed before `before_ms`, at most `limit`, always a
  // prefix of the ids, none above `through_max` (what a relay has not confirmed stays)
  // and never the newest event (so a reader behind the oldest kept is told, 410, rather
  // than answered nothing); returns how many went.
  virtual Result<int64_t> prune_events(int64_t before_ms, size_t limit,
                                       int64_t through_max = std::numeric_limits<int64_t>::max()) = 0;
  // Reports (DESIGN.md section 11): what moved `number`'s balance on the UTC days
  // from_day..to_day (both included), by transaction type (core/reports.h), from totals
  // kept in the same commit as the postings: time that grows with the days, not the rows.
  virtual Result<std::map<core::TransactionType, core::DailyTotal>> flows(std::string_view number, int64_t from_day,
                                                                         int64_t to_day) = 0;
  // Reports: the committed transactions of `currency` in the UTC hours from_hour..to_hour
  // (both included), by hour and type, from totals kept in the same commit.
  virtual Result<core::Volumes> volumes(std::string_view currency, int64_t from_hour, int64_t to_hour) = 0;
  // The change feed's relays (DESIGN.md section 11): the last event id `relay`'s target
  // confirmed, 0 when it has confirmed none.
  virtual Result<int64_t> relay_position(std::string_view relay) = 0;
  // `relay`'s target confirmed every event through `position`. Never moves a position
  // back: a relay that lost its lease and confirms late changes nothing.
  virtual Status confirm_relay(std::string_view relay, int64_t position) = 0;

  // OK when the store can serve (reachable, schema current).
  virtual Status ping() = 0;
  // Feeds every row to the visitor: accounts, reference claims, then committed
  // transactions in sequence order, then audit records in log order.
  virtual Status scan(ScanVisitor& visitor) = 0;

  // How many apply() calls may run at once: 1 for a single-writer store; a database
  // that locks rows can run several batches (one connection each) side by side.
  virtual size_t apply_concurrency() const { return 1; }

  // Audit records written but not yet chained by the store's sealing job (0 for a store
  // that chains them itself).
  virtual Result<int64_t> unsealed_audit_records() { return int64_t{0}; }

  // Whether the database's primary has a synchronous replica now (MySQL/MariaDB
  // semi-synchronous replication, enabled and ON: a commit acknowledged is on two
  // servers). nullopt when the store has no such replication to speak of (SQLite; a
  // primary without semi-sync enabled, as RDS Multi-AZ, whose standby is synchronous
  // storage instead).
  virtual Result<std::optional<bool>> synchronous_replica() { return std::optional<bool>(); }
};

}  // namespace balanced::storage
