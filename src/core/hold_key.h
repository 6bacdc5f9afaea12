// A committed hold's keys, which a store may keep apart from its row (SQLite's hold_keys,
// schema 13): what finds the hold by party, by expiry and in the review queue. Written by
// the store from hold_key_of(), compared with it by the verifier (verify.h, check 12).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/risk.h"
#include "core/types.h"

namespace balanced::core {

struct HoldKey {
  int64_t sequence = 0;  // the hold's row
  std::string source;
  std::string destination;
  int64_t expires_at_ms = 0;
  bool pending = false;  // hold_status pending
  bool review = false;   // risk_decision review

  bool operator==(const HoldKey&) const = default;
};

// The keys of a committed hold as its row says; none for any other row (a rejected hold
// is never found as one, and its status never changes after; a hold's hold_status does).
inline std::optional<HoldKey> hold_key_of(const Transaction& t) {
  if (t.type != TransactionType::hold || t.status != TransactionStatus::committed) return std::nullopt;
  return HoldKey{.sequence = t.sequence,
                 .source = t.source,
                 .destination = t.destination,
                 .expires_at_ms = t.expires_at_ms,
                 .pending = t.hold_status == HoldStatus::pending,
                 .review = t.risk_decision == risk_decision_name(RiskDecision::review)};
}

}  // namespace balanced::core
