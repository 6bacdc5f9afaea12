#include "api/problems.h"

namespace balanced::api {
namespace {

std::string_view title(Code code) {
  switch (code) {
    case Code::ok: return "OK";
    case Code::invalid_request: return "Invalid request";
    case Code::not_found: return "Not found";
    case Code::account_not_found: return "Account not found";
    case Code::method_not_allowed: return "Method not allowed";
    case Code::account_exists: return "Account already exists";
    case Code::idempotency_conflict: return "Transaction id reused with a different request";
    case Code::payload_too_large: return "Request body too large";
    case Code::insufficient_funds: return "Insufficient funds";
    case Code::currency_mismatch: return "Currency mismatch";
    case Code::same_account: return "Source and destination are the same account";
    case Code::balance_overflow: return "Balance would overflow";
    case Code::rate_limited: return "Too many requests";
    case Code::headers_too_large: return "Request headers too large";
    case Code::internal: return "Internal error";
    case Code::overloaded: return "Overloaded, retry shortly";
    case Code::unavailable: return "Storage unavailable, retry shortly";
    case Code::unauthorized: return "Unauthorized";
    case Code::forbidden: return "Forbidden";
    case Code::linked_failed: return "Another transfer of the atomic batch failed";
    case Code::version_mismatch: return "The account has changed since that version";
    case Code::account_frozen: return "Account frozen";
    case Code::account_closed: return "Account closed";
    case Code::account_not_empty: return "Account balance is not zero";
    case Code::account_has_pending_holds: return "Account has pending holds";
    case Code::invalid_state_transition: return "Status change not allowed";
    case Code::hold_not_found: return "Hold not found";
    case Code::hold_not_pending: return "Hold is no longer pending";
    case Code::exceeds_hold_amount: return "Capture exceeds the hold";
    case Code::not_refundable: return "Transaction not refundable";
    case Code::exceeds_refundable_amount: return "Refund exceeds what is left to refund";
    case Code::duplicate_reference: return "Reference already used";
    case Code::events_expired: return "Events no longer kept";
    case Code::risk_denied: return "Denied by risk rules";
  }
  return "Error";
}

int status(Code code) {
  switch (code) {
    case Code::ok: return 200;
    case Code::invalid_request: return 400;
    case Code::unauthorized: return 401;
    case Code::forbidden: return 403;
    case Code::not_found:
    case Code::account_not_found:
    case Code::hold_not_found: return 404;
    case Code::method_not_allowed: return 405;
    case Code::account_exists:
    case Code::idempotency_conflict:
    case Code::account_not_empty:
    case Code::account_has_pending_holds:
    case Code::invalid_state_transition:
    case Code::hold_not_pending:
    case Code::duplicate_reference: return 409;
    case Code::events_expired: return 410;
    case Code::version_mismatch: return 412;
    case Code::payload_too_large: return 413;
    case Code::insufficient_funds:
    case Code::currency_mismatch:
    case Code::same_account:
    case Code::balance_overflow:
    case Code::account_frozen:
    case Code::account_closed:
    case Code::exceeds_hold_amount:
    case Code::not_refundable:
    case Code::exceeds_refundable_amount:
    case Code::risk_denied:
    case Code::linked_failed: return 422;
    case Code::rate_limited: return 429;
    case Code::headers_too_large: return 431;
    case Code::internal: return 500;
    case Code::overloaded:
    case Code::unavailable: return 503;
  }
  return 500;
}

}  // namespace

http::Problem problem_for(Code code) { return {status(code), code_name(code), title(code)}; }

http::Response problem_response(Code code, std::string_view detail) {
  return http::problem_response(problem_for(code), detail);
}

}  // namespace balanced::api
