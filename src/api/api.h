// The balance API: the seed's three endpoints and the rest of DESIGN.md §2.
#pragma once

#include <atomic>
#include <string>

#include "api/risk_hook.h"
#include "api/risk_rules.h"
#include "engine/engine.h"
#include "engine/event_waiters.h"
#include "http/admin.h"
#include "http/message.h"
#include "contract/routes.h"
#include "http/bookkeeping.h"
#include "http/router.h"
#include "service/worker_pool.h"

namespace balanced::api {

inline constexpr size_t history_limit_default = 50;
inline constexpr size_t holds_limit_default = 100;
// GET /accounts/{n}/holds?status=: pages of the store read for one answer at most; a
// page that filtered out more holds than it kept ends early with a nextCursor.
inline constexpr size_t holds_pages_scanned_max = 10;

// GET /events (DESIGN.md section 11): a page's default size, the longest wait asked for,
// and how many long-polls may wait at once (more: 503 overloaded).
inline constexpr size_t events_limit_default = 100;
using contract::events_wait_s_max;
inline constexpr size_t events_waits_max_default = 1024;
// GET /events/stream: open streams at once at most (more: 503 overloaded), the comment
// that keeps an idle one open, and the events one write carries at most.
inline constexpr size_t events_streams_max_default = 256;
inline constexpr int64_t events_heartbeat_ms_default = 15'000;
inline constexpr size_t events_stream_page = 1000;

// POST /accounts/transactions/batch takes a larger body than the other routes: 8,190
// transfers of up to ~250 bytes each.
inline constexpr size_t batch_body_bytes_max = 2 * 1024 * 1024;

struct ApiOptions {
  std::string default_currency = "USD";
  // Also answer GET /metrics here (no separate --admin-listen). /healthz and /readyz are
  // always answered here too: the gateway's health checks reach only this port.
  bool metrics_on_api_port = true;
  // One ECS access-log line per request (event.dataset "balanced.access"), carrying the
  // X-Request-Id and traceparent trace id the gateway sent, so they match its own line.
  bool access_log = false;
  // A hold's life when POST /holds names none (--hold-expiry-s).
  int64_t hold_expiry_s = core::hold_expiry_s_default;
  // --unique-references: a deposit's or withdrawal's (currency, reference) is taken by the
  // first committed under it; another id with it is 409 duplicate_reference.
  bool unique_references = false;
  // GET /events?wait=: long-polls waiting at once, at most (--events-waits-max).
  size_t events_waits_max = events_waits_max_default;
  // GET /events/stream: open at once, at most (--events-streams-max), and the heartbeat.
  size_t events_streams_max = events_streams_max_default;
  int64_t events_heartbeat_ms = events_heartbeat_ms_default;
  // --risk-rules: the rules every debit is decided by; null: none.
  const RiskRulesFile* risk_rules = nullptr;
  // --risk-hook: asked about every debit before it is queued, on risk_hook_threads
  // threads of the Api's own; null: none.
  RiskHook* risk_hook = nullptr;
  size_t risk_hook_threads = risk_hook_threads_default;
};

class Api final : public http::Handler {
 public:
  // The engine, registry and admin endpoints must outlive the Api.
  Api(engine::Engine& engine, observe::Registry& registry, http::AdminEndpoints& admin,
      ApiOptions options);
  void handle(http::Request&& request, http::Respond respond) override;
  size_t body_bytes_max(std::string_view method, std::string_view target) const override;
  // A head it could not read, a body too large: counted and logged like any answer.
  void on_transport_error(http::Response& response, const http::Request& head) override {
    book_.close_transport_error(head, response);
  }
  // Readiness: storage reachable, schema current.
  Status ready();
  // Draining: answers every GET /events long-poll now, while the server can still send,
  // and refuses new waits (they are answered at once); ends every event stream.
  void stop_waits() {
    event_waiters_.stop();
    stream_waiters_.stop();
  }
  // Draining, before the engine drains: the risk hook's queued requests are asked and
  // queued for the committer (or answered), then its threads end; none is taken after.
  void stop_hooks() {
    if (hook_pool_) hook_pool_->stop();
  }
  ~Api() override;

 private:
  // An operation's answer, built from its outcome.
  using Answer = http::Response (*)(core::Outcome&&);
  // Queues `operation` for the committer; `answer` builds the response on the connection's
  // thread once it is decided. 503 overloaded at once when the queue is full.
  void submit(core::Operation&& operation, http::Respond respond, Answer answer);
  // The risk rules an operation is decided by (null: none); `single` for a lone
  // POST /transactions, which a review turns into a hold.
  std::shared_ptr<const core::RiskCheck> risk_check(bool single) const {
    return options_.risk_rules != nullptr ? options_.risk_rules->check(single) : nullptr;
  }
  // With --risk-hook: on a hook thread, asks the hook about the operations not recorded
  // yet (one call for the request) and calls `go` with each carrying the decision; a
  // request whose every id is recorded (a replay) goes on unasked. 503 overloaded when the
  // hook's queue is full. Without a hook, `go` at once.
  using Go = std::function<void(std::vector<core::Operation>)>;
  void ask_risk_hook(std::vector<core::Operation> operations, bool single, http::Respond respond, Go go);
  // submit() after the hook, if any. `single`: a lone POST /transactions.
  void submit_checked(core::Operation&& operation, bool single, http::Respond respond, Answer answer);
  void create_account(http::Request& request, http::Respond respond);
  void post_transaction(http::Request& request, http::Respond respond);
  void post_transaction_batch(http::Request& request, http::Respond respond);
  // Queues a batch's valid items (`positions`: each one's index among the items); the
  // answer has every item's outcome, `outcomes` holding those decided already.
  void submit_batch(std::vector<core::Operation> operations, http::Respond respond, std::vector<std::string> ids,
                    std::vector<core::Outcome> outcomes, std::vector<size_t> positions);
  // PATCH /accounts/{n}: limit, metadata, status (DESIGN.md section 10), through the
  // committer; 200 with the account and its ETag.
  void patch_account(std::string_view number, http::Request& request, http::Respond respond);
  // POST /accounts/{n}/deposits and /withdrawals. An omitted currency is the account's
  // (which never changes), read before the posting is queued.
  void post_posting(core::TransactionType type, std::string_view number, http::Request& request,
                    http::Respond respond);
  // POST /holds, /holds/{id}/capture and /void (DESIGN.md section 10): answered with the
  // hold as it stands after the operation.
  void post_hold(http::Request& request, http::Respond respond);
  void settle_hold(core::TransactionType type, std::string_view hold_id, http::Request& request,
                   http::Respond respond);
  void post_refund(std::string_view original_id, http::Request& request, http::Respond respond);
  http::Response hold(std::string_view id);
  http::Response account_holds(std::string_view number, const http::Request& request);
  // GET /holds?reviewRule=*|NAME&status=pending: the holds risk reviews made that wait
  // for an operator (DESIGN.md section 11), newest first.
  http::Response review_holds(const http::Request& request);
  // REQUIRES (balance, account, history): `number` is a valid account number; handle()
  // checks it once for every route that names an account.
  // Cached reads never hold this thread on a remote cache: the answer is built on it
  // once the cache has replied (Engine::cached_account), from the store on a miss.
  void balance(std::string_view number, const http::Request& request, http::Respond respond);
  void account(std::string_view number, http::Respond respond);
  void read_cached(std::string_view number, http::Respond respond,
                   http::Response (*encode)(const Result<core::Account>&));
  http::Response history(std::string_view number, const http::Request& request);
  // GET /accounts/{n}/balance?asOf=: the balance and version at a past instant (commit
  // time), from the store.
  http::Response balance_at(std::string_view number, std::string_view as_of);
  http::Response transaction(std::string_view id);
  // GET /events?after=&limit=&wait=: the change feed, long-polled when nothing is new.
  void events(const http::Request& request, http::Respond respond);
  // GET /accounts/{n}/statement?from=&to=: whole UTC days, O(days) (DESIGN.md section 11).
  http::Response statement(std::string_view number, const http::Request& request);
  // GET /reports/volumes?from=&to=&currency=&groupBy=day|hour (DESIGN.md section 11).
  http::Response volumes(const http::Request& request);
  // GET /events/stream: the feed as Server-Sent Events, from Last-Event-ID or ?after=.
  void events_stream(const http::Request& request, http::Respond respond);

  engine::Engine& engine_;
  http::AdminEndpoints& admin_;
  const ApiOptions options_;
  http::RouteStats stats_;
  const http::Bookkeeping book_;
  std::atomic<uint64_t> next_link_{1};  // tells one atomic batch's transfers from another's
  std::atomic<size_t> streams_open_{0};  // GET /events/stream, bounded by events_streams_max
  prometheus::Gauge& streams_open_gauge_;
  prometheus::Gauge& last_event_gauge_;  // the last event id this replica committed
  int64_t last_event_id_ = 0;  // the listener's (the engine calls it one commit at a time)
  // Woken by the engine after each commit that made events. Last: its destructor answers
  // the waits left while the rest is still there.
  engine::EventWaiters event_waiters_;
  engine::EventWaiters stream_waiters_;  // the open streams', between two writes
  // The risk hook's threads (with --risk-hook). After the rest: destroyed first, running
  // what is queued while everything it uses is still there.
  std::optional<service::WorkerPool> hook_pool_;
};

// A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then random bits.
std::string uuid_v7(int64_t unix_ms);

}  // namespace balanced::api
