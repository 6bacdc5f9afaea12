// Stable error codes and the value types that carry them.
//
// Expected failures are values, never exceptions: every layer returns Status or
// Result<T>, and the HTTP layer maps a Code to a status and a problem+json body in
// one place (src/api/api.cc).
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace balanced {

enum class Code {
  ok,
  invalid_request,       // 400: a field is missing, malformed or out of range
  not_found,             // 404: no such route or transaction
  account_not_found,     // 404
  method_not_allowed,    // 405
  account_exists,        // 409
  idempotency_conflict,  // 409: same transaction id, different payload
  payload_too_large,     // 413
  insufficient_funds,    // 422
  currency_mismatch,     // 422
  same_account,          // 422
  balance_overflow,      // 422: a balance would leave the int64 range
  rate_limited,          // 429
  headers_too_large,     // 431
  internal,              // 500
  overloaded,            // 503: queue full, retry after a moment
  unavailable,           // 503: storage down
  unauthorized,          // 401
  forbidden,             // 403
  linked_failed,         // 422: another transfer of the same atomic batch failed
  // Appended, never inserted: the commit log stores a rejection's code as its number.
  version_mismatch,          // 412: If-Match names a version the account has moved on from
  account_frozen,            // 422: a debit from a frozen account
  account_closed,            // 422: a posting that touches a closed account
  account_not_empty,         // 409: closing an account whose balance is not 0
  account_has_pending_holds, // 409: closing an account with pending amounts
  invalid_state_transition,  // 409: a status change the state machine does not allow
  hold_not_found,            // 404: no hold with that id
  hold_not_pending,          // 409: the hold was captured, voided, expired or rejected
  exceeds_hold_amount,       // 422: a capture of more than the hold
  not_refundable,            // 422: a refund of what is not a committed transfer or capture
  exceeds_refundable_amount, // 422: refunds beyond the original's amount
  duplicate_reference,       // 409: --unique-references, and the rail's reference is taken
  events_expired,            // 410: GET /events after an event no longer kept
  risk_denied,               // 422: a risk rule or the risk hook denies the debit
};
// The last code, for tables indexed by Code.
inline constexpr Code last_code = Code::risk_denied;

// The machine-readable name used in problem+json `code` and in the database.
std::string_view code_name(Code code);
// Inverse of code_name; Code::internal for an unknown name.
Code code_from_name(std::string_view name);

struct Error {
  Code code = Code::internal;
  std::string detail;
};

// A success or an Error. Cheap to return; test with ok().
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string detail) : error_{code, std::move(detail)} {}
  explicit Status(Error error) : error_(std::move(error)) {}
  bool ok() const { return error_.code == Code::ok; }
  Code code() const { return error_.code; }
  const std::string& detail() const { return error_.detail; }
  const Error& error() const { return error_; }

 private:
  Error error_{Code::ok, {}};
};

// A value or an Error.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {
    assert(std::get<Error>(v_).code != Code::ok);
  }
  Result(Code code, std::string detail) : Result(Error{code, std::move(detail)}) {}
  bool ok() const { return std::holds_alternative<T>(v_); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  const Error& error() const { return std::get<Error>(v_); }
  Status status() const { return ok() ? Status() : Status(error()); }

 private:
  std::variant<T, Error> v_;
};

}  // namespace balanced
