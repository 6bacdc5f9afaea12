// The balance API's routing table: one list of routes for the handler (api.cc), the
// per-route metrics and the authorization rules (auth/policy.h), so they never disagree.
#pragma once

#include "http/router.h"

namespace balanced::api {

enum class Route : int {
  create_account,
  post_transaction,
  post_transaction_batch,
  get_balance,
  get_account,
  get_history,
  get_transaction,
  health,
  ready,
  metrics,
};

const http::Router& api_router();

}  // namespace balanced::api
