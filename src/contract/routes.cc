#include "contract/routes.h"

namespace balanced::contract {
namespace {

http::Router make_router() {
  http::Router router;
  auto add = [&router](Route route, std::string_view method, std::string_view pattern,
                       std::string label) {
    router.add(static_cast<int>(route), method, pattern, std::move(label));
  };
  add(Route::create_account, "POST", "/accounts", "create_account");
  add(Route::post_transaction, "POST", "/accounts/transactions", "post_transaction");
  add(Route::post_transaction_batch, "POST", "/accounts/transactions/batch", "post_transaction_batch");
  add(Route::get_account, "GET", "/accounts/{number}", "get_account");
  add(Route::get_balance, "GET", "/accounts/{number}/balance", "get_balance");
  add(Route::get_history, "GET", "/accounts/{number}/transactions", "get_history");
  add(Route::get_transaction, "GET", "/transactions/{id}", "get_transaction");
  add(Route::post_deposit, "POST", "/accounts/{number}/deposits", "post_deposit");
  add(Route::post_withdrawal, "POST", "/accounts/{number}/withdrawals", "post_withdrawal");
  add(Route::patch_account, "PATCH", "/accounts/{number}", "patch_account");
  add(Route::post_hold, "POST", "/holds", "post_hold");
  add(Route::get_hold, "GET", "/holds/{id}", "get_hold");
  add(Route::capture_hold, "POST", "/holds/{id}/capture", "capture_hold");
  add(Route::void_hold, "POST", "/holds/{id}/void", "void_hold");
  add(Route::get_account_holds, "GET", "/accounts/{number}/holds", "get_account_holds");
  add(Route::post_refund, "POST", "/transactions/{id}/refunds", "post_refund");
  add(Route::get_events, "GET", "/events", "get_events");
  add(Route::get_events_stream, "GET", "/events/stream", "get_events_stream");
  add(Route::get_statement, "GET", "/accounts/{number}/statement", "get_statement");
  add(Route::get_volumes, "GET", "/reports/volumes", "get_volumes");
  add(Route::get_review_holds, "GET", "/holds", "get_review_holds");
  add(Route::health, "GET", "/healthz", "health");
  add(Route::ready, "GET", "/readyz", "health");
  add(Route::metrics, "GET", "/metrics", "metrics");
  return router;
}

}  // namespace

const http::Router& api_router() {
  static const http::Router router = make_router();
  return router;
}

}  // namespace balanced::contract
