// The balance API's routing table: the contract both binaries share (DESIGN.md sections 2,
// 10, 11). One list of routes for balanced's handler (api/api.cc), the per-route metrics of
// both binaries and the authorization rules (auth/gate.h), so they never disagree. Below
// auth and both services: a layer of its own (tests/layers).
#pragma once

#include <cstdint>
#include <string_view>

#include "http/router.h"

namespace balanced::contract {

enum class Route : int {
  create_account,
  post_transaction,
  post_transaction_batch,
  get_balance,
  get_account,
  get_history,
  get_transaction,
  post_deposit,
  post_withdrawal,
  patch_account,
  post_hold,
  get_hold,
  capture_hold,
  void_hold,
  get_account_holds,
  post_refund,
  get_events,
  get_events_stream,
  get_statement,
  get_volumes,
  get_review_holds,
  health,
  ready,
  metrics,
};

const http::Router& api_router();

// The header the gate names the accounts a caller acts for in (comma-separated; absent for
// an admin): balanced's committer checks a capture's, void's or refund's stored parties
// against it (DESIGN.md section 10). The gate strips it from every client request.
inline constexpr std::string_view acting_for_header = "X-Acting-For";
// Set by the gate on a capture or void by a caller with scope risk:review (DESIGN.md
// section 11): it may settle a hold a risk review made, whoever its parties are.
inline constexpr std::string_view risk_reviewer_header = "X-Risk-Reviewer";

// GET /events?wait=: the longest wait balanced takes (seconds); the gate gives such a
// long-poll that long upstream, and no more.
inline constexpr int64_t events_wait_s_max = 30;

}  // namespace balanced::contract
