#include "core/codes.h"

#include <array>

namespace balanced {
namespace {

struct CodeName {
  Code code;
  std::string_view name;
};

constexpr std::array kNames{
    CodeName{Code::ok, "ok"},
    CodeName{Code::invalid_request, "invalid_request"},
    CodeName{Code::not_found, "not_found"},
    CodeName{Code::account_not_found, "account_not_found"},
    CodeName{Code::method_not_allowed, "method_not_allowed"},
    CodeName{Code::account_exists, "account_exists"},
    CodeName{Code::idempotency_conflict, "idempotency_conflict"},
    CodeName{Code::payload_too_large, "payload_too_large"},
    CodeName{Code::insufficient_funds, "insufficient_funds"},
    CodeName{Code::currency_mismatch, "currency_mismatch"},
    CodeName{Code::same_account, "same_account"},
    CodeName{Code::balance_overflow, "balance_overflow"},
    CodeName{Code::rate_limited, "rate_limited"},
    CodeName{Code::headers_too_large, "headers_too_large"},
    CodeName{Code::internal, "internal"},
    CodeName{Code::overloaded, "overloaded"},
    CodeName{Code::unavailable, "unavailable"},
    CodeName{Code::unauthorized, "unauthorized"},
    CodeName{Code::forbidden, "forbidden"},
    CodeName{Code::linked_failed, "linked_failed"},
    CodeName{Code::version_mismatch, "version_mismatch"},
    CodeName{Code::account_frozen, "account_frozen"},
    CodeName{Code::account_closed, "account_closed"},
    CodeName{Code::account_not_empty, "account_not_empty"},
    CodeName{Code::account_has_pending_holds, "account_has_pending_holds"},
    CodeName{Code::invalid_state_transition, "invalid_state_transition"},
    CodeName{Code::hold_not_found, "hold_not_found"},
    CodeName{Code::hold_not_pending, "hold_not_pending"},
    CodeName{Code::exceeds_hold_amount, "exceeds_hold_amount"},
    CodeName{Code::not_refundable, "not_refundable"},
    CodeName{Code::exceeds_refundable_amount, "exceeds_refundable_amount"},
    CodeName{Code::duplicate_reference, "duplicate_reference"},
    CodeName{Code::events_expired, "events_expired"},
    CodeName{Code::risk_denied, "risk_denied"},
};

}  // namespace

std::string_view code_name(Code code) {
  for (const auto& entry : kNames) {
    if (entry.code == code) return entry.name;
  }
  return "internal";
}

Code code_from_name(std::string_view name) {
  for (const auto& entry : kNames) {
    if (entry.name == name) return entry.code;
  }
  return Code::internal;
}

}  // namespace balanced
