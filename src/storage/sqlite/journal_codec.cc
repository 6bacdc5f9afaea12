#include "storage/sqlite/journal_codec.h"

#include <cstring>

namespace balanced::storage {
namespace {

constexpr int64_t kFormatVersion = 1;  // nothing has shipped yet: no older format to read
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
  std::string take() { return std::move(out_); }
  void reserve(size_t bytes) { out_.reserve(bytes); }

 private:
  std::string out_;
};

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

void put_account(Writer& w, const core::Account& a) {
  w.str(a.number);
  w.str(a.currency);
  w.i64(a.balance);
  w.i64(a.overdraft_limit);
  w.i64(a.version);
  w.i64(a.created_at_ms);
  w.i64(a.updated_at_ms);
}

bool get_account(Reader& r, core::Account& a) {
  return r.str(a.number) && r.str(a.currency) && r.i64(a.balance) && r.i64(a.overdraft_limit) &&
         r.i64(a.version) && r.i64(a.created_at_ms) && r.i64(a.updated_at_ms);
}

}  // namespace

std::string encode_journal_record(const core::BatchEffects& effects) {
  Writer w;
  w.reserve(64 + effects.transactions.size() * 320 + effects.audit.size() * 96 +
            (effects.created.size() + effects.updated.size()) * 96);
  w.i64(kFormatVersion);
  w.i64(static_cast<int64_t>(effects.created.size()));
  for (const auto& a : effects.created) put_account(w, a);
  w.i64(static_cast<int64_t>(effects.updated.size()));
  for (const auto& a : effects.updated) put_account(w, a);
  w.i64(static_cast<int64_t>(effects.transactions.size()));
  for (const auto& t : effects.transactions) {
    w.i64(t.sequence);
    w.str(t.id);
    w.i64(static_cast<int64_t>(t.type));
    w.str(t.source);
    w.str(t.destination);
    w.i64(t.amount);
    w.str(t.currency);
    w.i64(static_cast<int64_t>(t.status));
    w.i64(static_cast<int64_t>(t.reject_code));
    w.i64(t.source_balance_after);
    w.i64(t.destination_balance_after);
    w.str(t.request_hash);
    w.str(t.client_timestamp);
    w.i64(t.created_at_ms);
  }
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
  return w.take();
}

Result<core::BatchEffects> decode_journal_record(std::string_view bytes) {
  Reader r(bytes);
  core::BatchEffects effects;
  int64_t version = 0;
  size_t n = 0;
  const Error corrupt{Code::internal, "journal record is truncated or malformed"};
  if (!r.i64(version) || version != kFormatVersion) return corrupt;
  if (!r.count(n)) return corrupt;
  effects.created.resize(n);
  for (auto& a : effects.created) {
    if (!get_account(r, a)) return corrupt;
  }
  if (!r.count(n)) return corrupt;
  effects.updated.resize(n);
  for (auto& a : effects.updated) {
    if (!get_account(r, a)) return corrupt;
  }
  if (!r.count(n)) return corrupt;
  effects.transactions.resize(n);
  for (auto& t : effects.transactions) {
    int64_t type = 0;
    int64_t status = 0;
    int64_t reject = 0;
    if (!(r.i64(t.sequence) && r.str(t.id) && r.i64(type) && r.str(t.source) &&
          r.str(t.destination) && r.i64(t.amount) && r.str(t.currency) && r.i64(status) &&
          r.i64(reject) && r.i64(t.source_balance_after) && r.i64(t.destination_balance_after) &&
          r.str(t.request_hash) && r.str(t.client_timestamp) && r.i64(t.created_at_ms))) {
      return corrupt;
    }
    if (type < 0 || type > 1 || status < 0 || status > 1 || reject < 0 ||
        reject > static_cast<int64_t>(last_code)) {
      return corrupt;
    }
    t.type = static_cast<core::TransactionType>(type);
    t.status = static_cast<core::TransactionStatus>(status);
    t.reject_code = static_cast<Code>(reject);
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
  if (!r.done()) return corrupt;
  return effects;
}

}  // namespace balanced::storage
