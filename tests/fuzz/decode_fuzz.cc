// libFuzzer target: request decoding, the journal record decoder, the cached-account
// decoder and the --db / --cache URL parsers must never crash, whatever the bytes;
// whatever decodes must be valid.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "redis/client.h"
#include "cache/redis_cache.h"
#include "core/json_codec.h"
#include "core/validate.h"
#include "net/url.h"
#include "storage/mysql/mysql_db.h"
#include "storage/sqlite/journal_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace balanced;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto transfer = core::decode_transfer(input, core::TransferHeaders{"", ""}, "fuzz-id");
  if (transfer.ok()) {
    const auto& t = transfer.value();
    if (t.amount <= 0 || !core::is_valid_account_number(t.source) ||
        !core::is_valid_account_number(t.destination) || !core::is_valid_transaction_id(t.id)) {
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
