// The ledger's values: accounts, transactions, the operations that change them and
// the outcome of each operation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/codes.h"

namespace balanced::core {

struct RiskCheck;  // risk.h: the rules and the hook's decision an operation is decided by

inline constexpr size_t account_number_bytes_max = 64;
inline constexpr size_t transaction_id_bytes_max = 64;
inline constexpr size_t client_timestamp_bytes_max = 64;
inline constexpr size_t operator_bytes_max = 64;
inline constexpr size_t reference_bytes_max = 128;
// Metadata: an object of string values (DESIGN.md section 10).
inline constexpr size_t metadata_keys_max = 50;
inline constexpr size_t metadata_key_bytes_max = 40;
inline constexpr size_t metadata_value_bytes_max = 500;
inline constexpr size_t reason_bytes_max = 500;  // a PATCH's or a refund's reason
// A hold's life (DESIGN.md section 10): expiresInSeconds 1 to 30 days.
inline constexpr int64_t hold_expiry_s_max = 2'592'000;
inline constexpr int64_t hold_expiry_s_default = 604'800;

// Every currency has one issuer account that money enters the ledger from. Its number
// starts with '$', which no client account number may contain, so the two never meet.
inline constexpr std::string_view issuer_prefix = "$issuer:";
// The issuer has no lower bound: its balance is minus the money in circulation.
inline constexpr int64_t issuer_overdraft_limit = std::numeric_limits<int64_t>::max();

std::string issuer_account_number(std::string_view currency);
bool is_issuer_account(std::string_view number);

// DESIGN.md section 10. checking: the default; savings: never overdrawn (its limit
// stays 0); credit: the overdraft limit is the credit line. Set at creation only.
enum class AccountType { checking, savings, credit };
// active <-> frozen -> closed, and active -> closed. Frozen: credits only. Closed: final.
enum class AccountStatus { active, frozen, closed };
inline constexpr AccountType last_account_type = AccountType::credit;
inline constexpr AccountStatus last_account_status = AccountStatus::closed;
std::string_view account_type_name(AccountType type);
std::string_view account_status_name(AccountStatus status);
std::optional<AccountType> account_type_from_name(std::string_view name);
std::optional<AccountStatus> account_status_from_name(std::string_view name);

struct Account {
  std::string number;
  std::string currency;
  int64_t balance = 0;
  int64_t overdraft_limit = 0;  // the balance may go down to -overdraft_limit
  int64_t version = 0;          // grows by one with each change of the row
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  AccountType type = AccountType::checking;
  AccountStatus status = AccountStatus::active;
  int64_t pending_debits = 0;   // held out of the account (holds from it)
  int64_t pending_credits = 0;  // promised to it (holds to it); never spendable
  std::string metadata{};       // a JSON object of string values, keys sorted; empty: none

  bool operator==(const Account&) const = default;
};

// What a debit of the account may take: balance - pendingDebits + overdraftLimit, in
// 128 bits (each term is an int64).
__int128 available(const Account& account);

// deposit: money enters circulation from the currency's issuer account; withdrawal: it
// leaves to it. hold: money of the source reserved for the destination, ended by one
// capture (moves some or all of it), void or expire (release it). refund: money of a
// transfer or capture given back (DESIGN.md section 10). Appended, never inserted: the
// commit log stores a type as its number.
enum class TransactionType { transfer, deposit, withdrawal, hold, capture, void_, expire, refund };
enum class TransactionStatus { committed, rejected };
inline constexpr TransactionType last_transaction_type = TransactionType::refund;
// Where a committed hold is: pending until its capture, void or expire is recorded.
// `none` on every row that is not a committed hold.
enum class HoldStatus { none, pending, captured, voided, expired };
inline constexpr HoldStatus last_hold_status = HoldStatus::expired;
std::string_view hold_status_name(HoldStatus status);  // "" for none
std::optional<HoldStatus> hold_status_from_name(std::string_view name);
// The id of the row that expires a hold: one per hold, as the id namespace is one.
std::string expire_transaction_id(std::string_view hold_id);
inline constexpr TransactionStatus last_transaction_status = TransactionStatus::rejected;

std::string_view type_name(TransactionType type);
std::string_view status_name(TransactionStatus status);
std::optional<TransactionType> type_from_name(std::string_view name);
std::optional<TransactionStatus> status_from_name(std::string_view name);

struct Transaction {
  int64_t sequence = 0;  // commit order, assigned by the store
  std::string id;
  TransactionType type = TransactionType::transfer;
  std::string source;
  std::string destination;
  int64_t amount = 0;
  std::string currency;  // empty for a rejection before the currency was known
  TransactionStatus status = TransactionStatus::committed;
  Code reject_code = Code::ok;
  int64_t source_balance_after = 0;
  int64_t destination_balance_after = 0;
  std::string request_hash;      // hex SHA-256 of the economic payload
  std::string client_timestamp;  // as the client sent it; may be empty
  int64_t created_at_ms = 0;
  std::string reference{};  // the payment rail's id of a deposit or withdrawal; may be empty
  std::string metadata{};   // a JSON object of string values, keys sorted; empty: none sent
  // Each account's version after this transaction (a committed one); 0 on a rejection and
  // on rows written before versions were kept.
  int64_t source_version_after = 0;
  int64_t destination_version_after = 0;
  std::string hold_id{};    // capture, void, expire: the hold they end
  std::string refund_of{};  // refund: the transaction it gives back
  std::string reason{};     // refund: why, as the client sent it; may be empty
  int64_t expires_at_ms = 0;  // a committed hold: from then on it is expired
  // The row's state, the only fields that change after it is written. A hold: its status,
  // the amount captured and the id of the row that ended it. A transfer or capture: the
  // amount refunded so far (settled_amount).
  HoldStatus hold_status = HoldStatus::none;
  int64_t settled_amount = 0;
  std::string settled_by{};
  // The risk decision recorded with the row (DESIGN.md section 11): "deny" on a row
  // refused by a rule or the hook, "review" on a hold a review made, the hook's
  // "allow" when it was called; and the rule that decided (core::risk_hook_rule for the
  // hook). Empty when no rule matched and no hook was called.
  std::string risk_decision{};
  std::string risk_rule{};

  bool operator==(const Transaction&) const = default;
};

struct CreateAccount {
  std::string number;
  std::string currency;
  int64_t initial_balance = 0;
  int64_t overdraft_limit = 0;
  std::string operator_name;
  AccountType type = AccountType::checking;
  std::string metadata{};  // canonical JSON object, or empty
};

// PATCH /accounts/{n} (DESIGN.md section 10): each field set is a change asked for.
struct PatchAccount {
  std::string number;
  std::optional<int64_t> overdraft_limit;
  // A JSON merge patch of string values (null deletes the key), canonical; nullopt: none.
  std::optional<std::string> metadata_patch;
  std::optional<AccountStatus> status;
  std::string reason;                      // for the audit record; may be empty
  std::optional<int64_t> expected_version;  // If-Match
  std::string operator_name;
};

// A posting between two accounts of one currency: a transfer, a deposit or a withdrawal
// (whose other side is the currency's issuer account), or a hold (type).
struct Transfer {
  std::string id;
  std::string source;
  std::string destination;
  int64_t amount = 0;
  std::string currency;  // optional: empty means "whatever the accounts hold"
  std::string client_timestamp;
  std::string request_hash;  // filled by transfer_request_hash()
  std::string operator_name;
  std::string reference{};  // deposits and withdrawals: 1-128 bytes, or empty when not sent
  std::string metadata{};   // canonical JSON object (keys sorted), or empty when not sent
  // Non-zero: this transfer is linked with the neighbours carrying the same value (one
  // atomic batch, contiguous in the operations): all of them commit, or none does.
  uint64_t link = 0;
  TransactionType type = TransactionType::transfer;
  int64_t expires_in_s = 0;  // a hold: its life from the commit (> 0 once defaulted)
  // A deposit or withdrawal under --unique-references: its (currency, reference) may be
  // committed once, under one id.
  bool unique_reference = false;
  // The risk rules and hook decision it is decided by; null: none (the default path).
  std::shared_ptr<const RiskCheck> risk{};
};

// The key of a deposit's or withdrawal's reference under --unique-references.
std::string reference_key(std::string_view currency, std::string_view reference);

// The accounts a caller acts for, as the gateway verified them (X-Acting-For); nullopt:
// any (an admin, or no gateway in front). Checked against stored parties by the committer.
using ActingFor = std::optional<std::vector<std::string>>;
bool may_act_for(const ActingFor& acting_for, std::string_view account);

// POST /holds/{id}/capture (type capture), /void (void_), and the sweeper's expire.
struct SettleHold {
  TransactionType type = TransactionType::capture;
  std::string id;  // captureId or voidId; an expire's is expire_transaction_id(hold_id)
  std::string hold_id;
  std::optional<int64_t> amount;  // a capture's; nullopt: all of the hold
  std::string request_hash;       // filled by settle_request_hash()
  std::string client_timestamp;
  std::string operator_name;
  ActingFor acting_for;  // the hold's destination must be among them
  // The caller may capture a hold a risk review made (scope admin or risk:review).
  bool reviewer = false;
};

// POST /transactions/{id}/refunds.
struct Refund {
  std::string id;
  std::string original_id;
  std::optional<int64_t> amount;  // nullopt: what is left to refund
  std::string reason;
  std::string metadata;  // canonical JSON object, or empty
  std::string request_hash;
  std::string client_timestamp;
  std::string operator_name;
  ActingFor acting_for;  // the original's destination must be among them
  std::shared_ptr<const RiskCheck> risk{};  // as Transfer::risk
};

using Operation = std::variant<CreateAccount, Transfer, PatchAccount, SettleHold, Refund>;

// Hex SHA-256 of the fields that make two requests "the same request": source,
// destination, amount and currency. The client timestamp is left out on purpose so a
// retry that re-stamps its time still replays.
std::string transfer_request_hash(const Transfer& transfer);
// The same for a deposit to or a withdrawal from `account`, over every field the client
// sent but its timestamp, as sent (an omitted currency, reference or metadata differs
// from any given one), its type first: it never equals a transfer's.
std::string posting_request_hash(TransactionType type, std::string_view account, const Transfer& posting);
// A hold's: its type first, then every field sent but the timestamp (an omitted currency,
// expiry or metadata differs from any given one).
std::string hold_request_hash(const Transfer& hold);
// A capture's or void's: type, hold and amount as sent.
std::string settle_request_hash(const SettleHold& settle);
std::string refund_request_hash(const Refund& refund);

// An optional value kept on the heap: moving one moves a pointer. An outcome is moved
// from the committer to the request's completion several times, and a transaction row
// (nine strings) costs some 400 instructions a move; copying copies the value.
template <typename T>
class Boxed {
 public:
  Boxed() = default;
  Boxed(std::nullopt_t) {}  // NOLINT: as std::optional
  Boxed(T value) : value_(std::make_unique<T>(std::move(value))) {}  // NOLINT: as std::optional
  Boxed(std::optional<T> value) {  // NOLINT: as std::optional
    if (value) value_ = std::make_unique<T>(std::move(*value));
  }
  Boxed(const Boxed& other) : value_(other.value_ ? std::make_unique<T>(*other.value_) : nullptr) {}
  Boxed(Boxed&&) noexcept = default;
  Boxed& operator=(const Boxed& other) {
    if (this != &other) value_ = other.value_ ? std::make_unique<T>(*other.value_) : nullptr;
    return *this;
  }
  Boxed& operator=(Boxed&&) noexcept = default;
  Boxed& operator=(T value) {
    value_ = std::make_unique<T>(std::move(value));
    return *this;
  }
  explicit operator bool() const { return value_ != nullptr; }
  bool has_value() const { return value_ != nullptr; }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }
  T* operator->() { return value_.get(); }
  const T* operator->() const { return value_.get(); }
  void reset() { value_.reset(); }

 private:
  std::unique_ptr<T> value_;
};

// What happened to one operation of a batch.
struct Outcome {
  Code code = Code::ok;
  std::string detail;
  bool replayed = false;  // an earlier request with the same id decided this outcome
  // The transaction this outcome is about (new, or the earlier one on replay). For a
  // created account, its deposit if it had an initial balance.
  Boxed<Transaction> transaction;
  std::optional<Account> account;  // the created account
  // A hold operation's hold row as it stands after the operation (POST /holds, capture,
  // void, expire answer the hold).
  Boxed<Transaction> hold;
};

// The change feed (DESIGN.md section 11): one event per committed transaction, account
// created and account changed by a PATCH; rejections make none.
enum class EventKind : uint8_t { account_created, account_updated, transaction };
inline constexpr EventKind last_event_kind = EventKind::transaction;

// An account an event changed, as of that event.
struct EventBalance {
  std::string account_number;
  int64_t balance = 0;
  int64_t available = 0;  // clamped to int64 (an issuer's)
  int64_t version = 0;
};

struct Event {
  int64_t id = 0;  // assigned by the store: gapless, in commit order
  EventKind kind = EventKind::transaction;
  int64_t occurred_at_ms = 0;
  // kind transaction: the index of its row in its batch's transactions.
  int64_t transaction_index = -1;
  // Account events: the account as of the event.
  std::optional<Account> account;
  std::vector<EventBalance> balances;
  // The JSON the feed serves but its id (json_codec.h: encode_event), rendered once the
  // sequences are assigned (render_audit_and_events()); a store keeps only this, with id, type and
  // time.
  std::string body;
};

// What a store keeps of an event and the feed reads.
struct StoredEvent {
  int64_t id = 0;
  std::string type;  // "account.created", "transaction.transfer", ...
  int64_t occurred_at_ms = 0;
  std::string body;
};

struct AuditRecord {
  int64_t log_id = 0;  // assigned by the store, in append order
  std::string operation_type;
  std::string operator_name;
  int64_t operation_time_ms = 0;
  std::string detail;     // JSON
  std::string prev_hash;  // 32 raw bytes; all zero for the first record
  std::string hash;       // 32 raw bytes: SHA-256(prev_hash || canonical row)
  // Before sealing (see seal_audit()): the index, in its batch's transactions, of the
  // transaction whose JSON becomes `detail`; -1 when `detail` is already set.
  int64_t transaction_index = -1;
};

}  // namespace balanced::core
