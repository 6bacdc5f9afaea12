// The token checks and authorization rules of DESIGN.md section 8, in one place for both
// binaries: balance-gateway runs them before it forwards a request, and balanced runs the
// same when it is given its own --jwks (section 9).
//
// Who may do what (scope `admin` grants every row, for every account):
//   GET /accounts/{n}, /accounts/{n}/balance, /accounts/{n}/transactions
//                                  balances:read, and n in the token's `accounts`
//   GET /transactions/{id}         balances:read, and its source or destination in
//                                  `accounts` (known only from the stored transaction:
//                                  checked on the answer, see check_answer())
//   POST /accounts/transactions    transactions:write, sourceAccountNumber in `accounts`
//   POST /accounts/transactions/batch  transactions:write, every item's sourceAccountNumber
//                                  a string in `accounts` (else 403 for the whole batch)
//   POST /accounts                 accounts:write
// Headers that name a caller (X-Auth-*, X-User*, X-Forwarded-User, X-Operator) are
// removed from every request; X-Operator is then set to the token's subject, so the
// audit log names the principal.
#pragma once

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "contract/routes.h"
#include "auth/jwt.h"
#include "auth/key_source.h"
#include "auth/token_cache.h"
#include "http/message.h"
#include "http/problem.h"
#include "observe/registry.h"

namespace balanced::auth {

namespace problems {
inline constexpr http::Problem unauthorized{401, "unauthorized", "Unauthorized"};
inline constexpr http::Problem forbidden{403, "forbidden", "Forbidden"};
}  // namespace problems

struct GateStats {
  GateStats(observe::Registry& registry, const std::string& prefix);
  std::array<prometheus::Counter*, failure_count> failures{};  // by reason
  prometheus::Counter& forbidden;
  prometheus::Counter& cache_hits;
  prometheus::Counter& verifications;  // signature checks done (cache misses)
};

struct Admission {
  std::optional<http::Response> deny;          // set: answer this and stop
  std::shared_ptr<const Principal> principal;  // set when the token is good (even if denied)
  bool check_answer = false;  // GET /transactions/{id}: pass the answer to check_answer()
  bool idempotent = false;    // a GET, or a transfer that carries its id: safe to retry
  bool body_checked = false;  // the body was read as I-JSON already (core/json_strict.h)
  // The upstream exchange may take this long rather than the proxy's timeout (a
  // long-poll of GET /events: its wait and 5 s); 0: the proxy's.
  int64_t upstream_timeout_ms = 0;
  // GET /events/stream: an answer of type text/event-stream is relayed as it comes, with
  // no upstream timeout once its head is in (gateway/proxy.h).
  bool stream = false;
};

// GET /events?wait=: the upstream gets the wait and this much more before it times out.
inline constexpr int64_t events_wait_upstream_slack_ms = 5'000;

class Gate {
 public:
  using Now = std::function<int64_t()>;  // Unix seconds
  // The key source and stats (may be null) must outlive the gate.
  Gate(VerifierOptions options, KeySource& keys, GateStats* stats, Now now = system_now,
       size_t cache_entries_max = 100'000);

  // Checks `request` for `route` (from api_router(); -1 for none) and strips the headers
  // that name a caller. Never forwards what it cannot prove is allowed.
  Admission admit(http::Request& request, int route, const http::Router::Match& match);
  // For check_answer admissions: 403 when the transaction's parties are not the
  // principal's. A non-2xx answer passes (a 404 for an unknown id, say).
  std::optional<http::Response> check_answer(const Principal& principal,
                                             const http::Response& answer);

  Verification verify(std::string_view token);
  static int64_t system_now();

 private:
  http::Response unauthorized(const Verification& verification, bool token_sent);
  http::Response forbidden(std::string detail, bool insufficient_scope);

  Verifier verifier_;
  KeySource& keys_;
  GateStats* stats_;
  Now now_;
  TokenCache cache_;
};

// Headers that name a caller: a client's are dropped, only a gate sets them.
bool is_identity_header(std::string_view name);

}  // namespace balanced::auth
