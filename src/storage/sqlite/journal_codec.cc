#include "storage/sqlite/journal_codec.h"

#include <cstring>
#include <type_traits>

#include "storage/rows.h"

namespace balanced::storage {
namespace {

// The record format written. 2 added the transaction fields of DESIGN.md section 10
// (reference, metadata, the versions after), 3 the accounts' (type, status, pending
// amounts, metadata), 4 the holds' and refunds' fields, the updated transactions, and a
// mask per row of the fields that are not empty or zero, which alone are written (most of
// a transfer's later fields are empty). Older records are read without the fields they
// lack (rows.h: Column::since): a log written by an earlier release recovers.
// 5 the references taken under --unique-references. 6 the change feed's events as the
// committer made them (id, kind, row, time, balances, account), rendered by the
// materializer. 7 the risk decision and rule of a transaction (DESIGN.md section 11),
// which a release that knows format 6 must not read as a row without them.
constexpr int64_t kFormatVersion = 7;
constexpr int64_t kMaskedFormat = 4;
constexpr int64_t kOldestFormatVersion = 1;
constexpr uint64_t kItemsMax = 1'000'000;

class Writer {
 public:
  void i64(int64_t value) {
    char bytes[8];
    std::memcpy(bytes, &value, 8);
    out_.append(bytes, 8);
  }
  void str(std::string_view text) {
    i64(static_cast<int64_t>(text.size()));
    out_.append(text);
  }
  // A field of any stored kind (rows.h); an enum as its integer.
  void field(int64_t value) { i64(value); }
  void field(const std::string& text) { str(text); }
  template <typename Enum>
    requires std::is_enum_v<Enum>
  void field(Enum value) {
    i64(static_cast<int64_t>(value));
  }
  std::string take() { return std::move(out_); }
  void reserve(size_t bytes) { out_.reserve(bytes); }

 private:
  std::string out_;
};

constexpr core::TransactionType last_of(core::TransactionType) { return core::last_transaction_type; }
constexpr core::TransactionStatus last_of(core::TransactionStatus) { return core::last_transaction_status; }
constexpr Code last_of(Code) { return last_code; }
constexpr core::AccountType last_of(core::AccountType) { return core::last_account_type; }
constexpr core::AccountStatus last_of(core::AccountStatus) { return core::last_account_status; }
constexpr core::HoldStatus last_of(core::HoldStatus) { return core::last_hold_status; }
constexpr core::EventKind last_of(core::EventKind) { return core::last_event_kind; }


class Reader {
 public:
  explicit Reader(std::string_view bytes) : rest_(bytes) {}
  bool i64(int64_t& value) {
    if (rest_.size() < 8) return fail();
    std::memcpy(&value, rest_.data(), 8);
    rest_.remove_prefix(8);
    return true;
  }
  bool str(std::string& text) {
    int64_t size = 0;
    if (!i64(size) || size < 0 || static_cast<uint64_t>(size) > rest_.size()) return fail();
    text.assign(rest_.substr(0, static_cast<size_t>(size)));
    rest_.remove_prefix(static_cast<size_t>(size));
    return true;
  }
  bool count(size_t& n) {
    int64_t value = 0;
    if (!i64(value) || value < 0 || static_cast<uint64_t>(value) > kItemsMax) return fail();
    n = static_cast<size_t>(value);
    return true;
  }
  bool field(int64_t& value) { return i64(value); }
  bool field(std::string& text) { return str(text); }
  // An enum, refused outside [0, last].
  template <typename Enum>
    requires std::is_enum_v<Enum>
  bool field(Enum& value) {
    int64_t raw = 0;
    if (!i64(raw) || raw < 0 || raw > static_cast<int64_t>(last_of(value))) return fail();
    value = static_cast<Enum>(raw);
    return true;
  }
  bool ok() const { return ok_; }
  bool done() const { return rest_.empty(); }

 private:
  bool fail() {
    ok_ = false;
    return false;
  }
  std::string_view rest_;
  bool ok_ = true;
};

// A row: the mask of its fields that are not at their default (bit i: the i-th field of
// rows.h's list), then those fields in that order.
template <typename Record, typename Walk>
void put(Writer& w, const Record& record, Walk walk) {
  uint64_t mask = 0;
  int bit = 0;
  walk(record, [&](std::string_view, const auto& value) {
    if (!is_default(value)) mask |= uint64_t{1} << bit;
    ++bit;
  });
  w.i64(static_cast<int64_t>(mask));
  bit = 0;
  walk(record, [&](std::string_view, const auto& value) {
    if ((mask >> bit++) & 1) w.field(value);
  });
}
// Formats before kMaskedFormat hold every field the format knows, unmasked.
template <typename Record, typename Walk>
bool get(Reader& r, Record& record, Walk walk, int64_t format) {
  uint64_t mask = ~uint64_t{0};
  if (format >= kMaskedFormat) {
    int64_t raw = 0;
    if (!r.i64(raw)) return false;
    mask = static_cast<uint64_t>(raw);
  }
  bool ok = true;
  int bit = 0;
  walk(record, [&](Column column, auto& value) {
    const bool present = format >= kMaskedFormat ? ((mask >> bit) & 1) != 0 : column.since <= format;
    ++bit;
    if (present) ok = ok && r.field(value);
  });
  return ok;
}
constexpr auto kAccountFields = [](auto& a, auto&& f) { for_each_account_field(a, f); };
constexpr auto kTransactionFields = [](auto& t, auto&& f) { for_each_transaction_field(t, f); };

}  // namespace

std::string encode_journal_record(const core::BatchEffects& effects) {
  Writer w;
  w.reserve(64 + effects.transactions.size() * 320 + effects.audit.size() * 96 +
            effects.events.size() * 120 +
            (effects.created.size() + effects.updated.size()) * 96);
  w.i64(kFormatVersion);
  w.i64(static_cast<int64_t>(effects.created.size()));
  for (const auto& a : effects.created) put(w, a, kAccountFields);
  w.i64(static_cast<int64_t>(effects.updated.size()));
  for (const auto& a : effects.updated) put(w, a, kAccountFields);
  w.i64(static_cast<int64_t>(effects.transactions.size()));
  for (const auto& t : effects.transactions) put(w, t, kTransactionFields);
  w.i64(static_cast<int64_t>(effects.audit.size()));
  for (const auto& record : effects.audit) {
    w.i64(record.log_id);
    w.i64(record.transaction_index);
    w.str(record.operation_type);
    w.str(record.operator_name);
    w.i64(record.operation_time_ms);
    w.str(record.detail);
    w.str(record.prev_hash);
    w.str(record.hash);
  }
  w.i64(static_cast<int64_t>(effects.transaction_updates.size()));
  for (const auto& t : effects.transaction_updates) put(w, t, kTransactionFields);
  w.i64(static_cast<int64_t>(effects.reference_claims.size()));
  for (const auto& claim : effects.reference_claims) {
    w.str(claim.key);
    w.str(claim.transaction_id);
  }
  w.i64(static_cast<int64_t>(effects.events.size()));
  for (const auto& event : effects.events) {
    w.i64(event.id);
    w.field(event.kind);
    w.i64(event.transaction_index);
    w.i64(event.occurred_at_ms);
    w.i64(static_cast<int64_t>(event.balances.size()));
    for (const auto& b : event.balances) {
      w.str(b.account_number);
      w.i64(b.balance);
      w.i64(b.available);
      w.i64(b.version);
    }
    w.i64(event.account ? 1 : 0);
    if (event.account) put(w, *event.account, kAccountFields);
  }
  return w.take();
}

Result<core::BatchEffects> decode_journal_record(std::string_view bytes) {
  Reader r(bytes);
  core::BatchEffects effects;
  int64_t version = 0;
  size_t n = 0;
  const Error corrupt{Code::internal, "journal record is truncated or malformed"};
  if (!r.i64(version) || version < kOldestFormatVersion || version > kFormatVersion) return corrupt;
  if (!r.count(n)) return corrupt;
  effects.created.resize(n);
  for (auto& a : effects.created) {
    if (!get(r, a, kAccountFields, version)) return corrupt;
  }
  if (!r.count(n)) return corrupt;
  effects.updated.resize(n);
  for (auto& a : effects.updated) {
    if (!get(r, a, kAccountFields, version)) return corrupt;
  }
  if (!r.count(n)) return corrupt;
  effects.transactions.resize(n);
  for (auto& t : effects.transactions) {
    if (!get(r, t, kTransactionFields, version)) return corrupt;
  }
  if (!r.count(n)) return corrupt;
  effects.audit.resize(n);
  for (auto& record : effects.audit) {
    if (!(r.i64(record.log_id) && r.i64(record.transaction_index) &&
          r.str(record.operation_type) && r.str(record.operator_name) &&
          r.i64(record.operation_time_ms) && r.str(record.detail) && r.str(record.prev_hash) &&
          r.str(record.hash))) {
      return corrupt;
    }
    if (record.transaction_index < -1 ||
        record.transaction_index >= static_cast<int64_t>(effects.transactions.size())) {
      return corrupt;
    }
  }
  if (version >= 4) {
    if (!r.count(n)) return corrupt;
    effects.transaction_updates.resize(n);
    for (auto& t : effects.transaction_updates) {
      if (!get(r, t, kTransactionFields, version)) return corrupt;
    }
  }
  if (version >= 5) {
    if (!r.count(n)) return corrupt;
    effects.reference_claims.resize(n);
    for (auto& claim : effects.reference_claims) {
      if (!r.str(claim.key) || !r.str(claim.transaction_id)) return corrupt;
    }
  }
  if (version >= 6) {
    if (!r.count(n)) return corrupt;
    effects.events.resize(n);
    for (auto& event : effects.events) {
      size_t balances = 0;
      if (!(r.i64(event.id) && r.field(event.kind) && r.i64(event.transaction_index) &&
            r.i64(event.occurred_at_ms) && r.count(balances))) {
        return corrupt;
      }
      event.balances.resize(balances);
      for (auto& b : event.balances) {
        if (!(r.str(b.account_number) && r.i64(b.balance) && r.i64(b.available) && r.i64(b.version))) return corrupt;
      }
      int64_t has_account = 0;
      if (!r.i64(has_account) || has_account < 0 || has_account > 1) return corrupt;
      if (has_account == 1 && !get(r, event.account.emplace(), kAccountFields, version)) return corrupt;
      const bool row = event.kind == core::EventKind::transaction;
      if (row != (event.transaction_index >= 0) || row == event.account.has_value() || event.transaction_index < -1 ||
          event.transaction_index >= static_cast<int64_t>(effects.transactions.size())) {
        return corrupt;
      }
    }
  }
  if (!r.done()) return corrupt;
  return effects;
}

}  // namespace balanced::storage
