// The balance API: the seed's three endpoints and the rest of DESIGN.md §2.
#pragma once

#include <atomic>
#include <string>

#include "engine/engine.h"
#include "http/message.h"
#include "observe/metrics.h"

namespace balanced::api {

inline constexpr size_t history_limit_default = 50;

struct ApiOptions {
  std::string default_currency = "USD";
};

class Api final : public http::Handler {
 public:
  // The engine and metrics must outlive the Api.
  Api(engine::Engine& engine, observe::Metrics& metrics, ApiOptions options);
  void handle(http::Request&& request, http::Respond respond) override;
  // After this, /readyz answers 503 so that a load balancer stops sending traffic.
  void set_draining() { draining_ = true; }

 private:
  void create_account(http::Request& request, http::Respond respond);
  void post_transaction(http::Request& request, http::Respond respond);
  // REQUIRES (balance, account, history): `number` is a valid account number; handle()
  // checks it once for every route that names an account.
  http::Response balance(std::string_view number, const http::Request& request);
  http::Response account(std::string_view number);
  http::Response history(std::string_view number, const http::Request& request);
  http::Response transaction(std::string_view id);
  http::Response ready();

  engine::Engine& engine_;
  observe::Metrics& metrics_;
  const ApiOptions options_;
  std::atomic<bool> draining_{false};
};

// A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then random bits.
std::string uuid_v7(int64_t unix_ms);

}  // namespace balanced::api
