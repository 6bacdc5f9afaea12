// JSON in and out: decoding request bodies into operations (fuzzed), encoding accounts
// and transactions for responses and audit details.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/codes.h"
#include "core/json_text.h"
#include "core/reports.h"
#include "core/types.h"

namespace balanced::core {

// Query parameters as decoded name/value pairs, in order.
using QueryParams = std::vector<std::pair<std::string, std::string>>;

struct TransferHeaders {
  std::string_view idempotency_key;  // empty when absent
  std::string_view operator_name;    // empty when absent
};

// POST /accounts: a JSON object body, or (body empty) the query parameters.
// Missing currency means default_currency. Error detail names the field.
Result<CreateAccount> decode_create_account(std::string_view body, const QueryParams& query,
                                            std::string_view default_currency,
                                            std::string_view operator_name);

// PATCH /accounts/{number}: any of overdraftLimit, metadata (a merge patch: a null value
// deletes the key), status, reason; anything else is 400 naming it. `if_match`: the
// If-Match header, "<version>" (empty: none).
Result<PatchAccount> decode_patch_account(std::string_view number, std::string_view body, std::string_view if_match,
                                          std::string_view operator_name);
// `current` metadata with a merge patch applied (both canonical; see decode_patch_account):
// canonical again, empty when no key is left; invalid_request past metadata_keys_max.
Result<std::string> merge_metadata(std::string_view current, std::string_view patch);

// POST /accounts/transactions. The id comes from transactionId, else the
// Idempotency-Key header (both present must agree), else generated_id.
Result<Transfer> decode_transfer(std::string_view body, const TransferHeaders& headers,
                                 std::string_view generated_id);

// POST /accounts/{account}/deposits (type deposit) and .../withdrawals (withdrawal):
// {transactionId?, amount, currency?, reference?, metadata?, timestamp?}. The id as for a
// transfer. The result names the account on its side (a deposit's destination, a
// withdrawal's source) and carries the request hash of what was sent; the issuer's side
// is left empty until set_posting_parties().
Result<Transfer> decode_posting(TransactionType type, std::string_view account, std::string_view body,
                                const TransferHeaders& headers, std::string_view generated_id);
// Sets a decoded deposit's or withdrawal's currency (the one sent, or else the account's)
// and its issuer side.
void set_posting_parties(Transfer& posting, std::string_view currency);

// POST /holds: a transfer's fields with holdId for transactionId, and expiresInSeconds?
// (1 to hold_expiry_s_max; 0 in the result when not sent) and metadata?.
Result<Transfer> decode_hold(std::string_view body, const TransferHeaders& headers, std::string_view generated_id);
// POST /holds/{id}/capture (type capture: {captureId, amount?}) and /void (void_: {voidId}).
Result<SettleHold> decode_settle(TransactionType type, std::string_view hold_id, std::string_view body,
                                 const TransferHeaders& headers, std::string_view generated_id);
// POST /transactions/{id}/refunds: {refundId, amount?, reason?, metadata?}.
Result<Refund> decode_refund(std::string_view original_id, std::string_view body, const TransferHeaders& headers,
                             std::string_view generated_id);

// POST /accounts/transactions/batch: {"transfers": [...], "atomic": bool}. The whole is an
// error only when it is not such an object or holds no or too many transfers; each item
// decodes on its own (its id: transactionId, else one from generate_id()).
inline constexpr size_t batch_transfers_max = 8190;
struct BatchItem {
  std::optional<Transfer> transfer;  // set when the item decoded
  Error error;                       // otherwise, why not
  std::string id;                    // the item's id when known, for its result
};
struct TransferBatch {
  bool atomic = false;
  std::vector<BatchItem> items;
};
Result<TransferBatch> decode_transfer_batch(std::string_view body, std::string_view operator_name,
                                            const std::function<std::string()>& generate_id);

std::string encode_account(const Account& account);
std::string encode_balance(const Account& account);
// GET /accounts/{n}/balance?asOf=: {accountNumber, balance, currency, version, asOf}, the
// balance and version after the last change at or before `at_ms` (the instant echoed).
std::string encode_balance_at(const Account& account, int64_t balance, int64_t version, int64_t at_ms);
// GET /accounts/{n}/statement: {accountNumber, currency, from, to, openingBalance,
// closingBalance, credits, debits, count, byType: {<type>: {credits, debits, count}}}.
std::string encode_statement(const Statement& statement);
// GET /reports/volumes: {currency, from, to, groupBy, periods: [{start, byType: {<type>:
// {count, amount}}}]}, the periods with any transaction, oldest first. `period_ms`: an
// hour or a day; `volumes` keyed by hour.
std::string encode_volumes(std::string_view currency, int64_t from_day, int64_t to_day, bool by_hour,
                           const Volumes& volumes);
// `record`: the row as written (answers of POSTs, audit details); `current`: with its state
// as it stands (GET /transactions/{id}: refundedAmount).
enum class TransactionView { record, current };
std::string encode_transaction(const Transaction& transaction, TransactionView view = TransactionView::record);
// The change feed's apiVersion: the date of the event shape (DESIGN.md section 11).
inline constexpr std::string_view events_api_version = "2026-12-06";
// An event as a store keeps it: the members after the id, `"apiVersion":...,"type":...,
// "occurredAt":...,"transaction"?,"account"?,"balances":[...]}` (a store that numbers events
// at its commit renders them before it knows the ids). `transaction_json`: its row (kind
// transaction: encode_transaction() of its row, rendered once for the audit detail too),
// else empty.
std::string encode_event(const Event& event, std::string_view type, std::string_view transaction_json);
// A transaction event's body rendered without its transaction (encode_event with none),
// with `"transaction":<transaction_json>` put back where encode_event puts it: for a store
// that keeps the row's JSON once, as its audit detail.
std::string with_transaction(std::string_view body, std::string_view transaction_json);
// The event as the feed serves it, {"id":N,<body>, appended to `out`.
void append_event_json(const StoredEvent& event, std::string& out);
// GET /events: {"events":[...],"next":N}; bodies are rendered events.
std::string encode_events(const std::vector<StoredEvent>& events, int64_t next);
// A committed transfer or capture: what a refund may give back.
bool is_refundable(const Transaction& transaction);
// A hold row as DESIGN.md section 10's hold: pending shows as expired from expiresAt on.
std::string_view shown_hold_status(const Transaction& hold, int64_t now_ms);
std::string encode_hold(const Transaction& hold, int64_t now_ms);
// {"holds":[...],"nextCursor":"..."|null}
std::string encode_holds(const std::vector<Transaction>& holds, std::optional<int64_t> next_cursor, int64_t now_ms);
// {"transactions":[...],"nextCursor":"..."|null}
std::string encode_history(const std::vector<Transaction>& transactions,
                           std::optional<int64_t> next_cursor);

}  // namespace balanced::core
