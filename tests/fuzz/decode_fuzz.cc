// libFuzzer target: request decoding (transfers, batches, accounts, deposits and
// withdrawals, PATCH, holds, captures, voids, refunds), the strict JSON parser, RFC 3339 instants, report dates,
// risk rules files, the journal record
// decoder, the cached-account decoder and the --db / --cache URL parsers must never crash,
// whatever the bytes; whatever decodes must be valid.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "redis/client.h"
#include "cache/redis_cache.h"
#include "core/json_codec.h"
#include "core/reports.h"
#include "core/risk.h"
#include "core/json_strict.h"
#include "core/validate.h"
#include "net/url.h"
#include "storage/mysql/mysql_db.h"
#include "storage/sqlite/journal_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace balanced;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  // A report's dates (?from=, ?to=): what parses prints back as it was given.
  if (const auto day = core::parse_utc_day(input); day && core::format_utc_day(*day) != input) __builtin_trap();
  // A risk rules file: what parses is within its bounds, its names unique and never '$'.
  if (auto rules = core::parse_risk_rules(input); rules.ok()) {
    if (rules.value().rules.size() > core::risk_rules_max) __builtin_trap();
    for (const auto& rule : rules.value().rules) {
      if (rule.name.empty() || rule.name.size() > core::risk_rule_name_bytes_max || rule.name.front() == '$' ||
          (rule.amount_gte && *rule.amount_gte <= 0) || rule.then == core::RiskDecision::allow) {
        __builtin_trap();
      }
    }
  }
  auto transfer = core::decode_transfer(input, core::TransferHeaders{"", ""}, "fuzz-id");
  if (transfer.ok()) {
    const auto& t = transfer.value();
    if (t.amount <= 0 || !core::is_valid_account_number(t.source) ||
        !core::is_valid_account_number(t.destination) || !core::is_valid_transaction_id(t.id)) {
      __builtin_trap();
    }
  }
  if (auto hold = core::decode_hold(input, core::TransferHeaders{"", ""}, "fuzz-id"); hold.ok()) {
    const auto& h = hold.value();
    if (h.amount <= 0 || h.type != core::TransactionType::hold || h.expires_in_s < 0 ||
        h.expires_in_s > core::hold_expiry_s_max || !core::is_valid_transaction_id(h.id) ||
        h.request_hash != core::hold_request_hash(h)) {
      __builtin_trap();
    }
  }
  for (auto type : {core::TransactionType::capture, core::TransactionType::void_}) {
    if (auto settle = core::decode_settle(type, input.substr(0, 16), input, core::TransferHeaders{"", ""}, "fuzz-id");
        settle.ok()) {
      const auto& h = settle.value();
      if ((h.amount && *h.amount <= 0) || (type == core::TransactionType::void_ && h.amount) ||
          !core::is_valid_transaction_id(h.hold_id) || !core::is_valid_transaction_id(h.id)) {
        __builtin_trap();
      }
    }
  }
  if (auto refund = core::decode_refund("orig-1", input, core::TransferHeaders{"", ""}, "fuzz-id"); refund.ok()) {
    const auto& r = refund.value();
    if ((r.amount && *r.amount <= 0) || r.reason.size() > core::reason_bytes_max || !core::is_valid_transaction_id(r.id)) {
      __builtin_trap();
    }
  }
  auto create = core::decode_create_account(input, {{"accountNumber", std::string(input)}}, "USD", "");
  if (create.ok() && (create.value().initial_balance < 0 || create.value().overdraft_limit < 0)) {
    __builtin_trap();
  }
  if (auto batch = core::decode_transfer_batch(input, "", [] { return std::string("fuzz-generated"); }); batch.ok()) {
    if (batch.value().items.empty() || batch.value().items.size() > core::batch_transfers_max) __builtin_trap();
    for (const auto& item : batch.value().items) {
      if (item.transfer && (item.transfer->amount <= 0 || !core::is_valid_transaction_id(item.transfer->id))) {
        __builtin_trap();
      }
    }
  }
  for (auto type : {core::TransactionType::deposit, core::TransactionType::withdrawal}) {
    if (auto posting = core::decode_posting(type, "acct", input, core::TransferHeaders{"", ""}, "fuzz-id");
        posting.ok()) {
      const auto& p = posting.value();
      if (p.amount <= 0 || p.type != type || !core::is_valid_transaction_id(p.id) ||
          p.reference.size() > core::reference_bytes_max || p.request_hash.size() != 64) {
        __builtin_trap();
      }
    }
  }
  if (auto patch = core::decode_patch_account("acct", input, input.substr(0, 12), ""); patch.ok()) {
    const auto& p = patch.value();
    if ((p.overdraft_limit && *p.overdraft_limit < 0) || (p.expected_version && *p.expected_version < 0)) {
      __builtin_trap();
    }
    // A merge patch decoded is canonical JSON: merging it into nothing never fails to parse.
    if (p.metadata_patch) {
      auto merged = core::merge_metadata("", *p.metadata_patch);
      if (!merged.ok() && merged.error().code != Code::invalid_request) __builtin_trap();
    }
  }
  // The strict parser and its checking twin agree on every input.
  if (core::parse_strict_json(input).ok() != core::check_strict_json(input).ok()) __builtin_trap();
  // An instant in 0000..9999 UTC prints and reads back the same (an offset may move a
  // 9999-12-31 instant into year 10000, which the format cannot show).
  if (auto ms = core::parse_rfc3339_ms(input); ms && *ms >= 0 && *ms < 253'402'300'800'000) {
    if (core::parse_rfc3339_ms(core::format_time_ms(*ms)) != ms) __builtin_trap();
  }
  (void)storage::decode_journal_record(input);
  std::vector<std::pair<std::string, std::string>> form;
  (void)net::decode_form(input, form);
  (void)net::percent_decode(input, false);
  if (auto account = cache::RedisCache::decode("a", input)) {
    if (cache::RedisCache::decode("a", cache::RedisCache::encode(*account)) != account) __builtin_trap();
  }
  if (auto config = storage::mysql::parse_url(input); config.ok()) {
    if (config.value().port == 0 || config.value().database.empty()) __builtin_trap();
  }
  (void)storage::mysql::redact_url(input);
  if (auto options = redis::parse_url(input); options.ok() && options.value().seeds.empty()) {
    __builtin_trap();
  }
  (void)redis::key_slot(input);
  return 0;
}
