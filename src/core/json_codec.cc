#include "core/json_codec.h"

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <cstring>
#include <limits>
#include <map>

#include "core/ledger.h"
#include "core/json_strict.h"
#include "core/json_text.h"
#include "core/validate.h"

namespace balanced::core {
namespace json = boost::json;

namespace {

Error field_error(std::string_view field, std::string_view problem) {
  return Error{Code::invalid_request, std::string(field) + ": " + std::string(problem)};
}

Result<json::object> parse_object(std::string_view body) {
  auto value = parse_strict_json(body);
  if (!value.ok()) return value.error();
  if (!value.value().is_object()) return Error{Code::invalid_request, "body must be a JSON object"};
  return std::move(value.value().as_object());
}

// A field that must be a string, if present. nullopt when absent or null.
Result<std::optional<std::string>> optional_string(const json::object& object,
                                                   std::string_view field) {
  const json::value* value = object.if_contains(field);
  if (value == nullptr || value->is_null()) return std::optional<std::string>();
  if (!value->is_string()) return field_error(field, "must be a string");
  return std::optional<std::string>(std::string(value->as_string()));
}

// A field that must be an exact integer in int64 range, if present.
Result<std::optional<int64_t>> optional_integer(const json::object& object,
                                                std::string_view field) {
  const json::value* value = object.if_contains(field);
  if (value == nullptr || value->is_null()) return std::optional<int64_t>();
  if (value->is_int64()) return std::optional<int64_t>(value->as_int64());
  if (value->is_uint64()) return field_error(field, "is out of range (signed 64-bit integer)");
  if (value->is_double()) {
    return field_error(field, "must be an exact integer of minor units, not a decimal");
  }
  return field_error(field, "must be an integer number of minor units");
}

Status check_account_number(std::string_view field, std::string_view number) {
  if (!is_valid_account_number(number)) {
    return Status(Code::invalid_request,
                  std::string(field) + ": must be 1-64 characters of [A-Za-z0-9._:-]");
  }
  return {};
}

struct CreateFields {
  std::optional<std::string> number;
  std::optional<std::string> currency;
  std::optional<int64_t> initial_balance;
  std::optional<int64_t> overdraft_limit;
  std::optional<std::string> type;
  std::string metadata;  // canonical, or empty
};

Result<std::string> metadata_from(const json::object& o, bool nulls_delete = false);

Result<CreateFields> create_fields_from_body(std::string_view body) {
  auto object = parse_object(body);
  if (!object.ok()) return object.error();
  CreateFields fields;
  auto number = optional_string(object.value(), "accountNumber");
  if (!number.ok()) return number.error();
  auto currency = optional_string(object.value(), "currency");
  if (!currency.ok()) return currency.error();
  auto initial = optional_integer(object.value(), "initialBalance");
  if (!initial.ok()) return initial.error();
  auto overdraft = optional_integer(object.value(), "overdraftLimit");
  if (!overdraft.ok()) return overdraft.error();
  auto type = optional_string(object.value(), "type");
  if (!type.ok()) return type.error();
  auto metadata = metadata_from(object.value());
  if (!metadata.ok()) return metadata.error();
  return CreateFields{std::move(number.value()), std::move(currency.value()), initial.value(),
                      overdraft.value(), std::move(type.value()), std::move(metadata.value())};
}

Result<CreateFields> create_fields_from_query(const QueryParams& query) {
  CreateFields fields;
  for (const auto& [name, value] : query) {
    if (name == "accountNumber") {
      fields.number = value;
    } else if (name == "currency") {
      fields.currency = value;
    } else if (name == "type") {
      fields.type = value;
    } else if (name == "initialBalance" || name == "overdraftLimit") {
      auto number = parse_int64(value);
      if (!number) return field_error(name, "must be an integer number of minor units");
      (name == "initialBalance" ? fields.initial_balance : fields.overdraft_limit) = number;
    }
  }
  return fields;
}

}  // namespace

Result<CreateAccount> decode_create_account(std::string_view body, const QueryParams& query,
                                            std::string_view default_currency,
                                            std::string_view operator_name) {
  auto fields = body.empty() ? create_fields_from_query(query) : create_fields_from_body(body);
  if (!fields.ok()) return fields.error();
  CreateFields& f = fields.value();
  if (!f.number) return field_error("accountNumber", "is required");
  if (auto status = check_account_number("accountNumber", *f.number); !status.ok()) {
    return status.error();
  }
  CreateAccount create;
  create.number = std::move(*f.number);
  create.currency = f.currency ? std::move(*f.currency) : std::string(default_currency);
  if (!is_valid_currency(create.currency)) {
    return field_error("currency", "must be three upper-case letters (ISO 4217)");
  }
  create.initial_balance = f.initial_balance.value_or(0);
  if (create.initial_balance < 0) return field_error("initialBalance", "must be >= 0");
  create.overdraft_limit = f.overdraft_limit.value_or(0);
  if (create.overdraft_limit < 0) return field_error("overdraftLimit", "must be >= 0");
  if (f.type) {
    auto type = account_type_from_name(*f.type);
    if (!type) return field_error("type", "must be checking, savings or credit");
    create.type = *type;
  }
  if (create.type == AccountType::savings && create.overdraft_limit != 0) {
    return field_error("overdraftLimit", "must be 0 for a savings account");
  }
  // An empty object is no metadata: the same as none, as a merge patch leaves it.
  create.metadata = f.metadata == "{}" ? std::string() : std::move(f.metadata);
  create.operator_name = std::string(operator_name);
  return create;
}

Result<PatchAccount> decode_patch_account(std::string_view number, std::string_view body, std::string_view if_match,
                                          std::string_view operator_name) {
  auto object = parse_object(body);
  if (!object.ok()) return object.error();
  const json::object& o = object.value();
  for (const auto& entry : o) {
    const std::string_view key(entry.key().data(), entry.key().size());
    if (key != "overdraftLimit" && key != "metadata" && key != "status" && key != "reason") {
      return field_error(key, "cannot be changed (overdraftLimit, metadata, status with reason can)");
    }
  }
  PatchAccount patch;
  patch.number = std::string(number);
  auto limit = optional_integer(o, "overdraftLimit");
  if (!limit.ok()) return limit.error();
  if (limit.value() && *limit.value() < 0) return field_error("overdraftLimit", "must be >= 0");
  patch.overdraft_limit = limit.value();
  if (const json::value* metadata = o.if_contains("metadata"); metadata != nullptr) {
    if (!metadata->is_object()) return field_error("metadata", "must be an object (a null value deletes a key)");
    auto canonical = metadata_from(o, /*nulls_delete=*/true);
    if (!canonical.ok()) return canonical.error();
    patch.metadata_patch = std::move(canonical.value());
  }
  auto status = optional_string(o, "status");
  if (!status.ok()) return status.error();
  if (status.value()) {
    auto parsed = account_status_from_name(*status.value());
    if (!parsed) return field_error("status", "must be active, frozen or closed");
    patch.status = *parsed;
  }
  auto reason = optional_string(o, "reason");
  if (!reason.ok()) return reason.error();
  if (reason.value()) {
    if (reason.value()->size() > reason_bytes_max) {
      return field_error("reason", "is longer than " + std::to_string(reason_bytes_max) + " bytes");
    }
    patch.reason = std::move(*reason.value());
  }
  if (!if_match.empty()) {
    // An entity tag, as ETag gives it: "<version>" (a weak W/ prefix is taken too).
    std::string_view tag = if_match;
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    if (tag.size() < 3 || tag.front() != '"' || tag.back() != '"') {
      return field_error("If-Match", "must be an entity tag, \"<version>\"");
    }
    auto version = parse_int64(tag.substr(1, tag.size() - 2));
    if (!version || *version < 0) return field_error("If-Match", "must name a version, \"<version>\"");
    patch.expected_version = *version;
  }
  if (!is_valid_operator(operator_name)) operator_name = {};
  patch.operator_name = std::string(operator_name);
  return patch;
}

namespace {

// The operation's id: the body's `field`, else the Idempotency-Key header (both present
// must agree), else `generated_id`.
Result<std::string> id_from(const json::object& o, std::string_view field, const TransferHeaders& headers,
                            std::string_view generated_id) {
  auto sent = optional_string(o, field);
  if (!sent.ok()) return sent.error();
  std::string id;
  if (sent.value()) {
    id = std::move(*sent.value());
    if (!headers.idempotency_key.empty() && headers.idempotency_key != id) {
      return field_error(field, "differs from the Idempotency-Key header");
    }
  } else if (!headers.idempotency_key.empty()) {
    id = std::string(headers.idempotency_key);
  } else {
    id = std::string(generated_id);
  }
  if (!is_valid_transaction_id(id)) return field_error(field, "must be 1-64 characters of [A-Za-z0-9._:-]");
  return id;
}

// `timestamp`, if sent: a string or an integer, kept as text.
Status client_timestamp_from(const json::object& o, std::string& out) {
  const json::value* timestamp = o.if_contains("timestamp");
  if (timestamp == nullptr || timestamp->is_null()) return {};
  if (timestamp->is_string()) {
    out = std::string(timestamp->as_string());
  } else if (timestamp->is_int64()) {
    out = std::to_string(timestamp->as_int64());
  } else {
    return Status(field_error("timestamp", "must be a string or an integer"));
  }
  if (!is_valid_client_timestamp(out)) return Status(field_error("timestamp", "must be 1-64 printable ASCII characters"));
  return {};
}

// `amount`: an integer > 0; required or not.
Result<std::optional<int64_t>> positive_amount(const json::object& o, bool required) {
  auto amount = optional_integer(o, "amount");
  if (!amount.ok()) return amount.error();
  if (!amount.value()) {
    if (required) return field_error("amount", "is required");
    return std::optional<int64_t>();
  }
  if (*amount.value() <= 0) return field_error("amount", "must be > 0");
  return amount.value();
}

Result<Transfer> transfer_from(const json::object& o, const TransferHeaders& headers,
                               std::string_view generated_id, std::string_view id_field = "transactionId") {
  Transfer transfer;

  auto id = id_from(o, id_field, headers, generated_id);
  if (!id.ok()) return id.error();
  transfer.id = std::move(id.value());

  auto source = optional_string(o, "sourceAccountNumber");
  if (!source.ok()) return source.error();
  if (!source.value()) return field_error("sourceAccountNumber", "is required");
  transfer.source = std::move(*source.value());
  if (auto s = check_account_number("sourceAccountNumber", transfer.source); !s.ok()) {
    return s.error();
  }
  auto destination = optional_string(o, "destinationAccountNumber");
  if (!destination.ok()) return destination.error();
  if (!destination.value()) return field_error("destinationAccountNumber", "is required");
  transfer.destination = std::move(*destination.value());
  if (auto s = check_account_number("destinationAccountNumber", transfer.destination);
      !s.ok()) {
    return s.error();
  }

  auto amount = positive_amount(o, true);
  if (!amount.ok()) return amount.error();
  transfer.amount = *amount.value();

  auto currency = optional_string(o, "currency");
  if (!currency.ok()) return currency.error();
  if (currency.value()) {
    if (!is_valid_currency(*currency.value())) {
      return field_error("currency", "must be three upper-case letters (ISO 4217)");
    }
    transfer.currency = std::move(*currency.value());
  }

  if (auto s = client_timestamp_from(o, transfer.client_timestamp); !s.ok()) return s.error();
  if (!headers.operator_name.empty() && is_valid_operator(headers.operator_name)) {
    transfer.operator_name = std::string(headers.operator_name);
  }
  transfer.request_hash = transfer_request_hash(transfer);
  return transfer;
}

}  // namespace

Result<Transfer> decode_transfer(std::string_view body, const TransferHeaders& headers,
                                 std::string_view generated_id) {
  auto object = parse_object(body);
  if (!object.ok()) return object.error();
  return transfer_from(object.value(), headers, generated_id);
}

namespace {

// `metadata`, if present: an object of string values within the bounds of types.h, as
// canonical JSON text (keys sorted). Empty when absent or null.
Result<std::string> metadata_from(const json::object& o, bool nulls_delete) {
  const json::value* value = o.if_contains("metadata");
  if (value == nullptr || value->is_null()) return std::string();
  if (!value->is_object()) return field_error("metadata", "must be an object of string values");
  const json::object& metadata = value->as_object();
  if (metadata.size() > metadata_keys_max) {
    return field_error("metadata", "has more than " + std::to_string(metadata_keys_max) + " keys");
  }
  std::vector<std::pair<std::string_view, std::string_view>> entries;
  std::vector<std::string_view> deleted;  // a merge patch's nulls
  for (const auto& entry : metadata) {
    const std::string_view key(entry.key().data(), entry.key().size());
    if (key.empty() || key.size() > metadata_key_bytes_max) {
      return field_error("metadata", "a key must be 1-" + std::to_string(metadata_key_bytes_max) + " bytes");
    }
    if (nulls_delete && entry.value().is_null()) {
      deleted.emplace_back(key);
      continue;
    }
    if (!entry.value().is_string()) return field_error("metadata." + std::string(key), "must be a string");
    const json::string& text = entry.value().as_string();
    if (text.size() > metadata_value_bytes_max) {
      return field_error("metadata." + std::string(key),
                         "is longer than " + std::to_string(metadata_value_bytes_max) + " bytes");
    }
    entries.emplace_back(key, std::string_view(text.data(), text.size()));
  }
  std::sort(entries.begin(), entries.end());
  std::sort(deleted.begin(), deleted.end());
  // Canonical: keys sorted, the deletions (null) after the values.
  std::string out = "{";
  for (const auto& [key, text] : entries) {
    if (out.size() > 1) out.push_back(',');
    out += json_string(key);
    out.push_back(':');
    out += json_string(text);
  }
  for (const auto& key : deleted) {
    if (out.size() > 1) out.push_back(',');
    out += json_string(key);
    out += ":null";
  }
  out.push_back('}');
  return out;
}

}  // namespace

Result<std::string> merge_metadata(std::string_view current, std::string_view patch) {
  std::map<std::string, std::string, std::less<>> merged;
  for (std::string_view text : {current, patch}) {
    if (text.empty()) continue;
    auto parsed = parse_strict_json(text);
    if (!parsed.ok() || !parsed.value().is_object()) return Error{Code::internal, "stored metadata is not an object"};
    for (const auto& entry : parsed.value().as_object()) {
      std::string key(entry.key().data(), entry.key().size());
      if (entry.value().is_null()) {
        merged.erase(key);
      } else if (entry.value().is_string()) {
        merged[key] = std::string(entry.value().as_string());
      }
    }
  }
  if (merged.size() > metadata_keys_max) {
    return Error{Code::invalid_request, "metadata: would hold more than " + std::to_string(metadata_keys_max) + " keys"};
  }
  if (merged.empty()) return std::string();
  std::string out = "{";
  for (const auto& [key, text] : merged) {
    if (out.size() > 1) out.push_back(',');
    out += json_string(key);
    out.push_back(':');
    out += json_string(text);
  }
  out.push_back('}');
  return out;
}

Result<Transfer> decode_posting(TransactionType type, std::string_view account, std::string_view body,
                                const TransferHeaders& headers, std::string_view generated_id) {
  auto object = parse_object(body);
  if (!object.ok()) return object.error();
  const json::object& o = object.value();
  if (auto s = check_account_number("accountNumber", account); !s.ok()) return s.error();
  for (const char* other : {"sourceAccountNumber", "destinationAccountNumber"}) {
    if (o.contains(other)) return field_error(other, "is not taken here: the account is the one in the path");
  }
  Transfer posting;
  posting.type = type;
  auto id = id_from(o, "transactionId", headers, generated_id);
  if (!id.ok()) return id.error();
  posting.id = std::move(id.value());
  auto amount = positive_amount(o, true);
  if (!amount.ok()) return amount.error();
  posting.amount = *amount.value();
  auto currency = optional_string(o, "currency");
  if (!currency.ok()) return currency.error();
  if (currency.value()) {
    if (!is_valid_currency(*currency.value())) {
      return field_error("currency", "must be three upper-case letters (ISO 4217)");
    }
    posting.currency = std::move(*currency.value());
  }
  auto reference = optional_string(o, "reference");
  if (!reference.ok()) return reference.error();
  if (reference.value()) {
    if (reference.value()->empty() || reference.value()->size() > reference_bytes_max) {
      return field_error("reference", "must be 1-" + std::to_string(reference_bytes_max) + " bytes");
    }
    posting.reference = std::move(*reference.value());
  }
  auto metadata = metadata_from(o);
  if (!metadata.ok()) return metadata.error();
  posting.metadata = std::move(metadata.value());
  if (auto s = client_timestamp_from(o, posting.client_timestamp); !s.ok()) return s.error();
  if (!headers.operator_name.empty() && is_valid_operator(headers.operator_name)) {
    posting.operator_name = std::string(headers.operator_name);
  }
  // The hash covers what the client sent; the issuer side is set once the currency is
  // known (set_posting_parties).
  posting.request_hash = posting_request_hash(type, account, posting);
  const std::string client(account);
  (type == TransactionType::deposit ? posting.destination : posting.source) = client;
  return posting;
}

void set_posting_parties(Transfer& posting, std::string_view currency) {
  posting.currency = std::string(currency);
  (posting.type == TransactionType::deposit ? posting.source : posting.destination) = issuer_account_number(currency);
}

Result<Transfer> decode_hold(std::string_view body, const TransferHeaders& headers, std::string_view generated_id) {
  auto object = parse_object(body);
  if (!object.ok()) return object.error();
  const json::object& o = object.value();
  auto hold = transfer_from(o, headers, generated_id, "holdId");
  if (!hold.ok()) return hold.error();
  Transfer& h = hold.value();
  h.type = TransactionType::hold;
  auto expires = optional_integer(o, "expiresInSeconds");
  if (!expires.ok()) return expires.error();
  if (expires.value()) {
    if (*expires.value() < 1 || *expires.value() > hold_expiry_s_max) {
      return field_error("expiresInSeconds", "must be 1 to " + std::to_string(hold_expiry_s_max));
    }
    h.expires_in_s = *expires.value();
  }
  auto metadata = metadata_from(o);
  if (!metadata.ok()) return metadata.error();
  h.metadata = std::move(metadata.value());
  h.request_hash = hold_request_hash(h);
  return hold;
}

Result<SettleHold> decode_settle(TransactionType type, std::string_view hold_id, std::string_view body,
                                 const TransferHeaders& headers, std::string_view generated_id) {
  if (!is_valid_transaction_id(hold_id)) return field_error("holdId", "must be 1-64 characters of [A-Za-z0-9._:-]");
  auto object = parse_object(body.empty() ? std::string_view("{}") : body);
  if (!object.ok()) return object.error();
  const json::object& o = object.value();
  const bool capture = type == TransactionType::capture;
  SettleHold settle{.type = type, .hold_id = std::string(hold_id)};
  auto id = id_from(o, capture ? "captureId" : "voidId", headers, generated_id);
  if (!id.ok()) return id.error();
  settle.id = std::move(id.value());
  if (capture) {
    auto amount = positive_amount(o, false);
    if (!amount.ok()) return amount.error();
    settle.amount = amount.value();
  } else if (o.contains("amount")) {
    return field_error("amount", "a void releases the whole hold");
  }
  if (auto s = client_timestamp_from(o, settle.client_timestamp); !s.ok()) return s.error();
  if (!headers.operator_name.empty() && is_valid_operator(headers.operator_name)) {
    settle.operator_name = std::string(headers.operator_name);
  }
  settle.request_hash = settle_request_hash(settle);
  return settle;
}

Result<Refund> decode_refund(std::string_view original_id, std::string_view body, const TransferHeaders& headers,
                             std::string_view generated_id) {
  if (!is_valid_transaction_id(original_id)) return field_error("id", "must be 1-64 characters of [A-Za-z0-9._:-]");
  auto object = parse_object(body.empty() ? std::string_view("{}") : body);
  if (!object.ok()) return object.error();
  const json::object& o = object.value();
  Refund refund{.original_id = std::string(original_id)};
  auto id = id_from(o, "refundId", headers, generated_id);
  if (!id.ok()) return id.error();
  refund.id = std::move(id.value());
  auto amount = positive_amount(o, false);
  if (!amount.ok()) return amount.error();
  refund.amount = amount.value();
  auto reason = optional_string(o, "reason");
  if (!reason.ok()) return reason.error();
  if (reason.value()) {
    if (reason.value()->empty() || reason.value()->size() > reason_bytes_max) {
      return field_error("reason", "must be 1-" + std::to_string(reason_bytes_max) + " bytes");
    }
    refund.reason = std::move(*reason.value());
  }
  auto metadata = metadata_from(o);
  if (!metadata.ok()) return metadata.error();
  refund.metadata = std::move(metadata.value());
  if (auto s = client_timestamp_from(o, refund.client_timestamp); !s.ok()) return s.error();
  if (!headers.operator_name.empty() && is_valid_operator(headers.operator_name)) {
    refund.operator_name = std::string(headers.operator_name);
  }
  refund.request_hash = refund_request_hash(refund);
  return refund;
}

Result<TransferBatch> decode_transfer_batch(std::string_view body, std::string_view operator_name,
                                            const std::function<std::string()>& generate_id) {
  auto parsed = parse_object(body);
  if (!parsed.ok()) return parsed.error();
  const json::object& o = parsed.value();
  TransferBatch batch;
  if (const json::value* atomic = o.if_contains("atomic"); atomic != nullptr && !atomic->is_null()) {
    if (!atomic->is_bool()) return field_error("atomic", "must be true or false");
    batch.atomic = atomic->as_bool();
  }
  const json::value* transfers = o.if_contains("transfers");
  if (transfers == nullptr || !transfers->is_array()) return field_error("transfers", "must be an array");
  const json::array& items = transfers->as_array();
  if (items.empty()) return field_error("transfers", "must hold at least one transfer");
  if (items.size() > batch_transfers_max) {
    return field_error("transfers", "holds more than " + std::to_string(batch_transfers_max));
  }
  batch.items.reserve(items.size());
  const TransferHeaders headers{{}, operator_name};
  for (const json::value& item : items) {
    BatchItem decoded;
    if (!item.is_object()) {
      decoded.error = Error{Code::invalid_request, "each transfer must be a JSON object"};
    } else {
      const json::value* id = item.as_object().if_contains("transactionId");
      if (id != nullptr && id->is_string() && is_valid_transaction_id(id->as_string())) {
        decoded.id = std::string(id->as_string());
      }
      auto transfer = transfer_from(item.as_object(), headers, decoded.id.empty() ? generate_id() : decoded.id);
      if (transfer.ok()) {
        decoded.id = transfer.value().id;
        decoded.transfer = std::move(transfer.value());
      } else {
        decoded.error = transfer.error();
      }
    }
    batch.items.push_back(std::move(decoded));
  }
  return batch;
}

namespace {

// Room for an object of an account's two strings and `fields` numbers or times.
size_t account_room(const Account& account, size_t fields) {
  return 2 + JsonWriter::escaped_max(account.number.size()) +
         JsonWriter::escaped_max(account.currency.size()) + fields * JsonWriter::field_max(16);
}

}  // namespace

namespace {

// available() as a JSON number: clamped to int64 (an issuer's, or a limit near 2^63).
int64_t available_shown(const Account& account) {
  const __int128 value = available(account);
  if (value > std::numeric_limits<int64_t>::max()) return std::numeric_limits<int64_t>::max();
  if (value < std::numeric_limits<int64_t>::min()) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(value);
}

}  // namespace

std::string encode_account(const Account& account) {
  std::string out;
  JsonWriter json(out, account_room(account, 12) + account.metadata.size());
  json.raw('{');
  json.member("accountNumber", account.number);
  json.member("type", account_type_name(account.type));
  json.member("status", account_status_name(account.status));
  json.member("currency", account.currency);
  json.member("balance", account.balance);
  json.member("available", available_shown(account));
  json.member("pendingDebits", account.pending_debits);
  json.member("pendingCredits", account.pending_credits);
  json.member("overdraftLimit", account.overdraft_limit);
  json.member("version", account.version);
  if (!account.metadata.empty()) json.json_member("metadata", account.metadata);
  json.time_member("createdAt", account.created_at_ms);
  json.time_member("updatedAt", account.updated_at_ms);
  json.raw('}');
  json.finish();
  return out;
}

std::string encode_balance(const Account& account) {
  std::string out;
  JsonWriter json(out, account_room(account, 9));
  json.raw('{');
  json.member("accountNumber", account.number);
  json.member("balance", account.balance);
  json.member("available", available_shown(account));
  json.member("pendingDebits", account.pending_debits);
  json.member("pendingCredits", account.pending_credits);
  json.member("currency", account.currency);
  json.member("version", account.version);
  json.member("status", account_status_name(account.status));
  json.time_member("asOf", account.updated_at_ms);
  json.raw('}');
  json.finish();
  return out;
}

std::string encode_balance_at(const Account& account, int64_t balance, int64_t version, int64_t at_ms) {
  std::string out;
  JsonWriter json(out, account_room(account, 5));
  json.raw('{');
  json.member("accountNumber", account.number);
  json.member("balance", balance);
  json.member("currency", account.currency);
  json.member("version", version);
  json.time_member("asOf", at_ms);
  json.raw('}');
  json.finish();
  return out;
}

namespace {

// {credits, debits, count}
std::string encode_daily_total(const DailyTotal& total) {
  std::string out;
  JsonWriter json(out, 2 + 3 * JsonWriter::field_max(8));
  json.raw('{');
  json.member("credits", total.credits);
  json.member("debits", total.debits);
  json.member("count", total.count);
  json.raw('}');
  json.finish();
  return out;
}

}  // namespace

std::string encode_statement(const Statement& statement) {
  std::string by_type = "{";
  for (const auto& [type, total] : statement.by_type) {
    if (by_type.size() > 1) by_type += ',';
    by_type += '"';
    by_type += type_name(type);
    by_type += "\":";
    by_type += encode_daily_total(total);
  }
  by_type += '}';
  std::string out;
  JsonWriter json(out, 2 + JsonWriter::escaped_max(statement.account.size()) +
                           JsonWriter::escaped_max(statement.currency.size()) + 2 * JsonWriter::escaped_max(10) +
                           5 * JsonWriter::field_max(16) + JsonWriter::field_max(6) + 16 + by_type.size());
  json.raw('{');
  json.member("accountNumber", statement.account);
  json.member("currency", statement.currency);
  json.member("from", format_utc_day(statement.from_day));
  json.member("to", format_utc_day(statement.to_day));
  json.member("openingBalance", statement.opening_balance);
  json.member("closingBalance", statement.closing_balance);
  json.member("credits", statement.total.credits);
  json.member("debits", statement.total.debits);
  json.member("count", statement.total.count);
  json.json_member("byType", by_type);
  json.raw('}');
  json.finish();
  return out;
}

std::string encode_volumes(std::string_view currency, int64_t from_day, int64_t to_day, bool by_hour,
                           const Volumes& volumes) {
  // Summed per period (an hour, or the day it falls in) and type.
  std::map<int64_t, std::map<TransactionType, Volume>> periods;
  for (const auto& [key, volume] : volumes) {
    const int64_t start_hour = by_hour ? key.hour : (key.hour >= 0 ? key.hour / 24 : -((-key.hour + 23) / 24)) * 24;
    add_volume(periods[start_hour][key.type], volume);
  }
  std::string out = "{\"currency\":\"";
  out += currency;  // validated: three capital letters
  out += "\",\"from\":\"" + format_utc_day(from_day) + "\",\"to\":\"" + format_utc_day(to_day) +
         "\",\"groupBy\":\"" + (by_hour ? "hour" : "day") + "\",\"periods\":[";
  bool first_period = true;
  for (const auto& [start_hour, by_type] : periods) {
    if (!first_period) out += ',';
    first_period = false;
    std::string start;
    JsonWriter time(start, 48);
    time.raw('{');
    time.time_member("start", start_hour * hour_ms);
    time.finish();
    out += start;
    out += ",\"byType\":{";
    bool first_type = true;
    for (const auto& [type, volume] : by_type) {
      if (!first_type) out += ',';
      first_type = false;
      out += '"';
      out += type_name(type);
      out += "\":{\"count\":" + std::to_string(volume.count) + ",\"amount\":" + std::to_string(volume.amount) + "}";
    }
    out += "}}";
  }
  out += "]}";
  return out;
}

std::string encode_transaction(const Transaction& t, TransactionView view) {
  const std::string_view type = type_name(t.type);
  const std::string_view status = status_name(t.status);
  const std::string_view reject = code_name(t.reject_code);
  std::string out;
  JsonWriter json(out, 2 + JsonWriter::escaped_max(t.id.size()) + JsonWriter::escaped_max(type.size()) +
                           JsonWriter::escaped_max(t.source.size()) +
                           JsonWriter::escaped_max(t.destination.size()) +
                           JsonWriter::escaped_max(t.currency.size()) +
                           JsonWriter::escaped_max(status.size()) + JsonWriter::escaped_max(reject.size()) +
                           JsonWriter::escaped_max(t.client_timestamp.size()) +
                           JsonWriter::escaped_max(t.reference.size()) + t.metadata.size() +
                           JsonWriter::escaped_max(t.hold_id.size()) + JsonWriter::escaped_max(t.refund_of.size()) +
                           JsonWriter::escaped_max(t.reason.size()) + JsonWriter::escaped_max(t.risk_decision.size()) +
                           JsonWriter::escaped_max(t.risk_rule.size()) + 26 * JsonWriter::field_max(24));
  json.raw('{');
  json.member("transactionId", t.id);
  // The sequence is assigned at commit; audit details, written before, leave it out.
  if (t.sequence > 0) json.member("sequence", t.sequence);
  json.member("type", type);
  json.member("sourceAccountNumber", t.source);
  json.member("destinationAccountNumber", t.destination);
  json.member("amount", t.amount);
  if (!t.currency.empty()) json.member("currency", t.currency);
  json.member("status", status);
  if (t.status == TransactionStatus::rejected) {
    json.member("rejectCode", reject);
  } else {
    json.member("sourceBalanceAfter", t.source_balance_after);
    json.member("destinationBalanceAfter", t.destination_balance_after);
  }
  if (!t.client_timestamp.empty()) json.member("timestamp", t.client_timestamp);
  if (!t.reference.empty()) json.member("reference", t.reference);
  if (!t.metadata.empty()) json.json_member("metadata", t.metadata);
  // Rows written before versions were kept have none (0) to show.
  if (t.source_version_after > 0) json.member("sourceVersionAfter", t.source_version_after);
  if (t.destination_version_after > 0) json.member("destinationVersionAfter", t.destination_version_after);
  if (!t.hold_id.empty()) json.member("holdId", t.hold_id);
  if (!t.refund_of.empty()) json.member("refundOf", t.refund_of);
  if (!t.reason.empty()) json.member("reason", t.reason);
  if (t.expires_at_ms > 0) json.time_member("expiresAt", t.expires_at_ms);
  if (!t.risk_decision.empty()) json.member("riskDecision", t.risk_decision);
  if (!t.risk_rule.empty()) json.member("riskRule", t.risk_rule);
  // State changes after the row is written: never in the audit record's copy.
  if (view == TransactionView::current && is_refundable(t)) json.member("refundedAmount", t.settled_amount);
  json.time_member("createdAt", t.created_at_ms);
  json.raw('}');
  json.finish();
  return out;
}

bool is_refundable(const Transaction& t) {
  return t.status == TransactionStatus::committed &&
         (t.type == TransactionType::transfer || t.type == TransactionType::capture);
}

std::string_view shown_hold_status(const Transaction& hold, int64_t now_ms) {
  if (hold.status == TransactionStatus::rejected) return "rejected";
  if (hold.hold_status == HoldStatus::pending && now_ms >= hold.expires_at_ms) return "expired";
  return hold_status_name(hold.hold_status);
}

std::string encode_hold(const Transaction& hold, int64_t now_ms) {
  const std::string_view status = shown_hold_status(hold, now_ms);
  std::string out;
  JsonWriter json(out, 2 + JsonWriter::escaped_max(hold.id.size()) + JsonWriter::escaped_max(hold.source.size()) +
                           JsonWriter::escaped_max(hold.destination.size()) +
                           JsonWriter::escaped_max(hold.currency.size()) +
                           JsonWriter::escaped_max(hold.settled_by.size()) +
                           JsonWriter::escaped_max(hold.client_timestamp.size()) + hold.metadata.size() +
                           JsonWriter::escaped_max(hold.risk_rule.size()) + 15 * JsonWriter::field_max(26));
  json.raw('{');
  json.member("holdId", hold.id);
  json.member("status", status);
  json.member("sourceAccountNumber", hold.source);
  json.member("destinationAccountNumber", hold.destination);
  json.member("amount", hold.amount);
  if (!hold.currency.empty()) json.member("currency", hold.currency);
  json.member("capturedAmount", hold.hold_status == HoldStatus::captured ? hold.settled_amount : 0);
  if (hold.status == TransactionStatus::rejected) json.member("code", code_name(hold.reject_code));
  if (!hold.settled_by.empty()) json.member("settledBy", hold.settled_by);
  if (!hold.client_timestamp.empty()) json.member("timestamp", hold.client_timestamp);
  if (!hold.metadata.empty()) json.json_member("metadata", hold.metadata);
  // A hold a risk review made of a transfer (DESIGN.md section 11): the rule, for the
  // operator who captures or voids it.
  if (hold.risk_decision == "review") json.member("reviewRule", hold.risk_rule);
  json.time_member("createdAt", hold.created_at_ms);
  if (hold.expires_at_ms > 0) json.time_member("expiresAt", hold.expires_at_ms);
  json.raw('}');
  json.finish();
  return out;
}

std::string encode_holds(const std::vector<Transaction>& holds, std::optional<int64_t> next_cursor, int64_t now_ms) {
  std::string out = "{\"holds\":[";
  for (size_t i = 0; i < holds.size(); ++i) {
    if (i > 0) out.push_back(',');
    out.append(encode_hold(holds[i], now_ms));
  }
  out.append("],\"nextCursor\":");
  out.append(next_cursor ? json_string(std::to_string(*next_cursor)) : "null");
  out.push_back('}');
  return out;
}

std::string encode_history(const std::vector<Transaction>& transactions,
                           std::optional<int64_t> next_cursor) {
  std::string out = "{\"transactions\":[";
  for (size_t i = 0; i < transactions.size(); ++i) {
    if (i > 0) out.push_back(',');
    out.append(encode_transaction(transactions[i]));
  }
  out.append("],\"nextCursor\":");
  out.append(next_cursor ? json_string(std::to_string(*next_cursor)) : "null");
  out.push_back('}');
  return out;
}

namespace {

void append_number(std::string& out, int64_t value) {
  char digits[24];
  out.append(digits, std::to_chars(digits, digits + sizeof digits, value).ptr);
}

// `text` as a JSON string: as it is when nothing in it needs escaping (account numbers,
// type names), else through json_string().
void append_string(std::string& out, std::string_view text) {
  const bool plain = std::all_of(text.begin(), text.end(), [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte >= 0x20 && byte < 0x80 && c != '"' && c != '\\';
  });
  if (!plain) {
    out += json_string(text);
    return;
  }
  out += '"';
  out += text;
  out += '"';
}

}  // namespace

// Written by appends into one reserved string (the materializer renders one per
// transaction: std::to_string and json_string allocated a string per number and name).
std::string encode_event(const Event& event, std::string_view type, std::string_view transaction_json) {
  std::string out;
  out.reserve(160 + transaction_json.size() + (event.account ? 320 : 0) + event.balances.size() * 140);
  out += "\"apiVersion\":";
  append_string(out, events_api_version);
  out += ",\"type\":";
  append_string(out, type);
  out += ",\"occurredAt\":\"";
  char time[kTimeChars];
  put_time_ms(event.occurred_at_ms, time);
  out.append(time, kTimeChars);
  out += '"';
  if (!transaction_json.empty()) {
    out += ",\"transaction\":";
    out += transaction_json;
  }
  if (event.account) {
    out += ",\"account\":";
    out += encode_account(*event.account);
  }
  out += ",\"balances\":[";
  for (size_t i = 0; i < event.balances.size(); ++i) {
    const EventBalance& b = event.balances[i];
    if (i > 0) out += ',';
    out += "{\"accountNumber\":";
    append_string(out, b.account_number);
    out += ",\"balance\":";
    append_number(out, b.balance);
    out += ",\"available\":";
    append_number(out, b.available);
    out += ",\"version\":";
    append_number(out, b.version);
    out += '}';
  }
  out += "]}";
  return out;
}

std::string with_transaction(std::string_view body, std::string_view transaction_json) {
  // encode_event writes the members before "balances" from fixed names, a type and a
  // time: the first "balances" member is the event's own.
  constexpr std::string_view kBalances = "\"balances\":[";
  const size_t at = body.find(kBalances);
  if (at == std::string_view::npos) return std::string(body);
  std::string out;
  out.reserve(body.size() + transaction_json.size() + 16);
  out.append(body.substr(0, at));
  out += "\"transaction\":";
  out.append(transaction_json);
  out += ',';
  out.append(body.substr(at));
  return out;
}

void append_event_json(const StoredEvent& event, std::string& out) {
  out += "{\"id\":";
  append_number(out, event.id);
  out += ',';
  out += event.body;
}

std::string encode_events(const std::vector<StoredEvent>& events, int64_t next) {
  size_t room = 32;
  for (const auto& e : events) room += e.body.size() + 32;
  std::string out;
  out.reserve(room);
  out += "{\"events\":[";
  for (size_t i = 0; i < events.size(); ++i) {
    if (i > 0) out += ',';
    append_event_json(events[i], out);
  }
  out += "],\"next\":";
  out += std::to_string(next);
  out += '}';
  return out;
}

}  // namespace balanced::core
