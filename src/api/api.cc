#include "api/api.h"

#include <chrono>
#include <limits>
#include <random>

#include "core/json_codec.h"
#include "core/validate.h"
#include "api/problems.h"
#include "engine/stats.h"
#include "http/tracing.h"
#include "net/url.h"
#include "observe/log.h"

namespace balanced::api {
namespace {

using contract::acting_for_header;
using contract::api_router;
using contract::Route;
using http::Request;
using http::Response;

Response json_response(int status, std::string body) {
  Response response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

Response error_response(const Error& error) { return problem_response(error.code, error.detail); }

const std::string* query_value(const Request& request, std::string_view name) {
  for (const auto& [key, value] : request.query) {
    if (key == name) return &value;
  }
  return nullptr;
}

// An account, with its version as the entity tag a PATCH may send back in If-Match.
Response account_with_etag(const core::Account& account) {
  Response response = json_response(200, core::encode_account(account));
  response.headers.emplace_back("ETag", "\"" + std::to_string(account.version) + "\"");
  return response;
}

int64_t now_ms();

Response transfer_response(core::Outcome&& outcome) {
  Response response;
  if (outcome.code == Code::ok && outcome.transaction->type == core::TransactionType::hold) {
    // A transfer a risk review held for an operator (DESIGN.md section 11): 202 with the
    // hold, 200 on a replay.
    response = json_response(outcome.replayed ? 200 : 202, core::encode_hold(*outcome.transaction, now_ms()));
    response.headers.emplace_back("Location", "/holds/" + outcome.transaction->id);
  } else if (outcome.code == Code::ok) {
    response = json_response(outcome.replayed ? 200 : 201,
                             core::encode_transaction(*outcome.transaction));
    response.headers.emplace_back("Location", "/transactions/" + outcome.transaction->id);
  } else {
    response = problem_response(outcome.code, outcome.detail);
  }
  if (outcome.replayed) response.headers.emplace_back("Idempotent-Replayed", "true");
  return response;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The hold an operation left, as its answer (201 new, 200 replayed).
Response hold_response(core::Outcome&& outcome) {
  Response response;
  if (outcome.code == Code::ok && outcome.hold) {
    response = json_response(outcome.replayed ? 200 : 201, core::encode_hold(*outcome.hold, now_ms()));
    response.headers.emplace_back("Location", "/holds/" + outcome.hold->id);
  } else {
    response = problem_response(outcome.code == Code::ok ? Code::internal : outcome.code, outcome.detail);
  }
  if (outcome.replayed) response.headers.emplace_back("Idempotent-Replayed", "true");
  return response;
}

// X-Acting-For as the gateway set it: nullopt (any account) when absent.
core::ActingFor acting_for(const Request& request) {
  if (!request.has_header(acting_for_header)) return std::nullopt;
  std::vector<std::string> accounts;
  std::string_view rest = request.header(acting_for_header);
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    std::string_view one = rest.substr(0, comma);
    while (!one.empty() && one.front() == ' ') one.remove_prefix(1);
    while (!one.empty() && one.back() == ' ') one.remove_suffix(1);
    if (!one.empty()) accounts.emplace_back(one);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  }
  return accounts;
}

// The gateway's mark on a caller with scope risk:review (stripped from clients).
bool is_risk_reviewer(const Request& request) { return request.header(contract::risk_reviewer_header) == "true"; }

core::TransferHeaders transfer_headers(const Request& request) {
  return core::TransferHeaders{request.header("Idempotency-Key"), request.header("X-Operator")};
}

// A page asked for by ?limit= (1 to storage::history_limit_max) and ?cursor= (a
// nextCursor of an earlier page).
struct PageAsked {
  size_t limit = 0;
  std::optional<int64_t> cursor;
};

// The query parameter `name` as an integer in [low, high]; nullopt when absent, an
// invalid_request saying what it `must_be` otherwise.
Result<std::optional<int64_t>> query_int(const Request& request, std::string_view name, int64_t low, int64_t high,
                                         std::string_view must_be) {
  const std::string* text = query_value(request, name);
  if (text == nullptr) return std::optional<int64_t>();
  auto parsed = core::parse_int64(*text);
  if (!parsed || *parsed < low || *parsed > high) {
    return Error{Code::invalid_request, std::string(name) + ": must be " + std::string(must_be)};
  }
  return parsed;
}

Result<PageAsked> page_asked(const Request& request, size_t default_limit) {
  constexpr auto kLimitMax = static_cast<int64_t>(storage::history_limit_max);
  auto limit = query_int(request, "limit", 1, kLimitMax, "an integer from 1 to " + std::to_string(kLimitMax));
  if (!limit.ok()) return limit.error();
  auto cursor = query_int(request, "cursor", 1, std::numeric_limits<int64_t>::max(),
                          "a nextCursor value from an earlier page");
  if (!cursor.ok()) return cursor.error();
  return PageAsked{.limit = limit.value() ? static_cast<size_t>(*limit.value()) : default_limit,
                   .cursor = cursor.value()};
}

// Builds the response on the connection's thread (off the committer), and times the hop
// there: the engine's `respond` stage.
template <class Build>
void respond_later(const http::Respond& respond, engine::EngineStats* stats, Build build) {
  respond.later([build = std::move(build), stats, handed = std::chrono::steady_clock::now()]() mutable {
    if (stats) stats->stage(engine::Stage::respond).Observe(storage::seconds_since(handed));
    return build();
  });
}

Response created_account_response(core::Outcome&& outcome) {
  if (outcome.code != Code::ok) return problem_response(outcome.code, outcome.detail);
  Response response = json_response(201, core::encode_account(*outcome.account));
  response.headers.emplace_back("Location", "/accounts/" + outcome.account->number);
  return response;
}

Response patched_account_response(core::Outcome&& outcome) {
  if (outcome.code != Code::ok) return problem_response(outcome.code, outcome.detail);
  return account_with_etag(*outcome.account);
}

}  // namespace

void Api::submit_checked(core::Operation&& operation, bool single, http::Respond respond, Answer answer) {
  if (options_.risk_hook == nullptr) return submit(std::move(operation), std::move(respond), answer);
  std::vector<core::Operation> operations;
  operations.push_back(std::move(operation));
  ask_risk_hook(std::move(operations), single, respond, [this, respond, answer](std::vector<core::Operation> asked) {
    submit(std::move(asked.front()), respond, answer);
  });
}

void Api::ask_risk_hook(std::vector<core::Operation> operations, bool single, http::Respond respond, Go go) {
  if (options_.risk_hook == nullptr) return go(std::move(operations));
  auto job = [this, operations = std::move(operations), single, respond, go = std::move(go),
              queued_at = std::chrono::steady_clock::now()]() mutable {
    if (std::chrono::steady_clock::now() - queued_at > std::chrono::milliseconds(risk_hook_queue_wait_max_ms)) {
      return respond(problem_response(Code::overloaded, "the request waited too long for the risk hook"));
    }
    // Recorded already (a retry): the committer answers as it first decided, unasked.
    std::vector<size_t> fresh;
    for (size_t i = 0; i < operations.size(); ++i) {
      const auto* transfer = std::get_if<core::Transfer>(&operations[i]);
      const auto* refund = std::get_if<core::Refund>(&operations[i]);
      if (transfer == nullptr && refund == nullptr) continue;
      auto recorded = engine_.store().transaction(transfer != nullptr ? transfer->id : refund->id);
      if (!recorded.ok()) fresh.push_back(i);
    }
    if (!fresh.empty()) {
      const HookVerdict verdict = options_.risk_hook->decide(core::encode_risk_hook_request(operations, fresh));
      auto check = std::make_shared<core::RiskCheck>();
      if (auto rules = risk_check(single)) *check = *rules;
      check->hook = verdict.decision;
      check->hook_reason = verdict.reason;
      check->review_holds = single;
      check->review_hold_expiry_s = options_.hold_expiry_s;
      for (const size_t i : fresh) {
        if (auto* transfer = std::get_if<core::Transfer>(&operations[i])) transfer->risk = check;
        if (auto* refund = std::get_if<core::Refund>(&operations[i])) refund->risk = check;
      }
    }
    go(std::move(operations));
  };
  if (!hook_pool_->post(std::move(job))) {
    const bool draining = hook_pool_->stopping();
    respond(problem_response(draining ? Code::unavailable : Code::overloaded,
                             draining ? "draining" : "the risk hook's queue is full"));
  }
}

void Api::submit(core::Operation&& operation, http::Respond respond, Answer answer) {
  const bool queued =
      engine_.submit(std::move(operation), [respond, stats = engine_.stats(), answer](core::Outcome&& outcome) {
        respond_later(respond, stats, [outcome = std::move(outcome), answer]() mutable { return answer(std::move(outcome)); });
      });
  if (!queued) respond(problem_response(Code::overloaded, "the commit queue is full"));
}

std::string uuid_v7(int64_t unix_ms) {
  thread_local std::mt19937_64 random{std::random_device{}()};
  const uint64_t high = (static_cast<uint64_t>(unix_ms) << 16) | 0x7000 | (random() & 0x0fff);
  const uint64_t low = (random() & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  // 8-4-4-4-12 hex digits, written by hand: snprintf took ~2,700 instructions, a tenth of
  // all the HTTP thread does for a transfer.
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text(36, '-');
  const auto put = [&text](size_t at, uint64_t value, int digits) {
    for (int i = digits - 1; i >= 0; --i, value >>= 4) text[at + static_cast<size_t>(i)] = kDigits[value & 0xf];
  };
  put(0, high >> 32, 8);
  put(9, (high >> 16) & 0xffff, 4);
  put(14, high & 0xffff, 4);
  put(19, low >> 48, 4);
  put(24, low & 0xffffffffffffULL, 12);
  return text;
}

Api::Api(engine::Engine& engine, observe::Registry& registry, http::AdminEndpoints& admin,
         ApiOptions options)
    : engine_(engine),
      admin_(admin),
      options_(std::move(options)),
      stats_(registry, "balanced_http", api_router()),
      book_(stats_, {.service = "balanced", .dataset = "balanced.access", .access_log = options_.access_log}),
      streams_open_gauge_(registry.gauge("balanced_event_streams_open", "GET /events/stream connections open")),
      last_event_gauge_(registry.gauge("balanced_events_last_id",
                                       "The id of the last event this replica committed (a relay's lag: this minus "
                                       "balanced_event_relay_position)")),
      event_waiters_(options_.events_waits_max),
      stream_waiters_(options_.events_streams_max) {
  if (options_.risk_hook != nullptr) hook_pool_.emplace("risk-hook", options_.risk_hook_threads, risk_hook_queued_max);
  engine_.set_commit_listener([this](int64_t last_event_id) {
    // Committers may finish out of id order: the gauge only rises.
    last_event_id_ = std::max(last_event_id_, last_event_id);
    last_event_gauge_.Set(static_cast<double>(last_event_id_));
    event_waiters_.notify(last_event_id);
    stream_waiters_.notify(last_event_id);
  });
}

void Api::handle(Request&& request, http::Respond respond) {
  const http::Router::Match match = api_router().match(request.method, request.path);
  const int route_id = match.route;

  // Every response passes here once: count it, time it, echo the request id, log it.
  const std::string_view operator_name = request.header("X-Operator");
  respond.decorate([this, record = book_.open(request, route_id,
                                              core::is_valid_operator(operator_name) ? operator_name
                                                                                     : std::string_view())](
                       Response& response) { book_.close(record, response); });

  if (route_id < 0) {
    if (!match.allow.empty()) return respond(http::method_not_allowed(match.allow));
    return respond(problem_response(Code::not_found,
                                    "no route for " + request.method + " " + request.path));
  }
  if (!request.query_valid) {
    return respond(problem_response(Code::invalid_request, "malformed query string"));
  }
  const auto route = static_cast<Route>(route_id);
  const bool names_account = route == Route::get_account || route == Route::get_balance ||
                             route == Route::get_history || route == Route::post_deposit ||
                             route == Route::post_withdrawal || route == Route::patch_account ||
                             route == Route::get_account_holds || route == Route::get_statement;
  if (names_account && !core::is_valid_account_number(match.param(0))) {
    return respond(problem_response(Code::invalid_request,
                                    "accountNumber: must be 1-64 characters of [A-Za-z0-9._:-]"));
  }
  switch (route) {
    case Route::create_account:
      return create_account(request, std::move(respond));
    case Route::post_transaction:
      return post_transaction(request, std::move(respond));
    case Route::post_transaction_batch:
      return post_transaction_batch(request, std::move(respond));
    case Route::get_account:
      return account(match.param(0), std::move(respond));
    case Route::get_balance:
      return balance(match.param(0), request, std::move(respond));
    case Route::get_history:
      return respond(history(match.param(0), request));
    case Route::get_transaction:
      return respond(transaction(match.param(0)));
    case Route::post_deposit:
      return post_posting(core::TransactionType::deposit, match.param(0), request, std::move(respond));
    case Route::post_withdrawal:
      return post_posting(core::TransactionType::withdrawal, match.param(0), request, std::move(respond));
    case Route::patch_account:
      return patch_account(match.param(0), request, std::move(respond));
    case Route::post_hold:
      return post_hold(request, std::move(respond));
    case Route::get_hold:
      return respond(hold(match.param(0)));
    case Route::capture_hold:
      return settle_hold(core::TransactionType::capture, match.param(0), request, std::move(respond));
    case Route::void_hold:
      return settle_hold(core::TransactionType::void_, match.param(0), request, std::move(respond));
    case Route::get_account_holds:
      return respond(account_holds(match.param(0), request));
    case Route::post_refund:
      return post_refund(match.param(0), request, std::move(respond));
    case Route::get_events:
      return events(request, std::move(respond));
    case Route::get_events_stream:
      return events_stream(request, std::move(respond));
    case Route::get_statement:
      return respond(statement(match.param(0), request));
    case Route::get_volumes:
      return respond(volumes(request));
    case Route::get_review_holds:
      return respond(review_holds(request));
    case Route::health:
    case Route::ready:
      return respond(std::move(*admin_.answer(request)));
    case Route::metrics:
      if (!options_.metrics_on_api_port) {
        return respond(problem_response(Code::not_found, "metrics are served on --admin-listen"));
      }
      return respond(std::move(*admin_.answer(request)));
  }
  respond(problem_response(Code::not_found, "no route for " + request.method + " " + request.path));
}

void Api::create_account(Request& request, http::Respond respond) {
  // Spring's @RequestParam reads query parameters and form bodies alike; so do we.
  std::string_view body = request.body;
  core::QueryParams params = request.query;
  if (request.header("Content-Type").starts_with("application/x-www-form-urlencoded")) {
    params.clear();
    if (!net::decode_form(body, params)) {
      return respond(problem_response(Code::invalid_request, "malformed form body"));
    }
    body = {};
  }
  auto create = core::decode_create_account(body, params, options_.default_currency,
                                            core::is_valid_operator(request.header("X-Operator"))
                                                ? request.header("X-Operator")
                                                : std::string_view());
  if (!create.ok()) return respond(error_response(create.error()));
  submit(std::move(create.value()), std::move(respond), created_account_response);
}

void Api::post_transaction(Request& request, http::Respond respond) {
  auto transfer = core::decode_transfer(request.body, transfer_headers(request), uuid_v7(now_ms()));
  if (!transfer.ok()) return respond(error_response(transfer.error()));
  transfer.value().risk = risk_check(true);
  submit_checked(std::move(transfer.value()), true, std::move(respond), transfer_response);
}

void Api::patch_account(std::string_view number, Request& request, http::Respond respond) {
  const std::string_view type = request.header("Content-Type");
  const std::string_view media = type.substr(0, type.find(';'));
  if (media != "application/json" && media != "application/merge-patch+json") {
    return respond(problem_response(Code::invalid_request,
                                    "Content-Type: must be application/json or application/merge-patch+json"));
  }
  auto patch = core::decode_patch_account(number, request.body, request.header("If-Match"), request.header("X-Operator"));
  if (!patch.ok()) return respond(error_response(patch.error()));
  submit(std::move(patch.value()), std::move(respond), patched_account_response);
}

void Api::post_posting(core::TransactionType type, std::string_view number, Request& request,
                       http::Respond respond) {
  auto posting = core::decode_posting(type, number, request.body, transfer_headers(request), uuid_v7(now_ms()));
  if (!posting.ok()) return respond(error_response(posting.error()));
  std::string currency = posting.value().currency;
  if (currency.empty()) {
    // An account's currency is set at creation and never changes: any snapshot will do.
    std::optional<core::Account> known;
    if (auto hit = engine_.cached_account_at_once(number); hit && *hit) known = std::move(**hit);
    if (!known) {
      auto stored = engine_.stored_account(number);
      if (!stored.ok()) return respond(error_response(stored.error()));
      known = std::move(stored.value());
    }
    currency = known->currency;
  }
  core::set_posting_parties(posting.value(), currency);
  posting.value().unique_reference = options_.unique_references && !posting.value().reference.empty();
  posting.value().risk = risk_check(false);
  submit_checked(std::move(posting.value()), false, std::move(respond), transfer_response);
}

void Api::post_hold(Request& request, http::Respond respond) {
  auto hold = core::decode_hold(request.body, transfer_headers(request), uuid_v7(now_ms()));
  if (!hold.ok()) return respond(error_response(hold.error()));
  // Defaulted after the hash: an omitted expiry is the same request whatever the flag.
  if (hold.value().expires_in_s == 0) hold.value().expires_in_s = options_.hold_expiry_s;
  hold.value().risk = risk_check(false);
  submit_checked(std::move(hold.value()), false, std::move(respond), hold_response);
}

void Api::settle_hold(core::TransactionType type, std::string_view hold_id, Request& request, http::Respond respond) {
  auto settle = core::decode_settle(type, hold_id, request.body, transfer_headers(request), uuid_v7(now_ms()));
  if (!settle.ok()) return respond(error_response(settle.error()));
  settle.value().acting_for = acting_for(request);
  // An admin (no account list) or a risk reviewer may settle a hold a review made.
  settle.value().reviewer = !settle.value().acting_for.has_value() || is_risk_reviewer(request);
  submit(std::move(settle.value()), std::move(respond), hold_response);
}

void Api::post_refund(std::string_view original_id, Request& request, http::Respond respond) {
  auto refund = core::decode_refund(original_id, request.body, transfer_headers(request), uuid_v7(now_ms()));
  if (!refund.ok()) return respond(error_response(refund.error()));
  refund.value().acting_for = acting_for(request);
  refund.value().risk = risk_check(false);
  submit_checked(std::move(refund.value()), false, std::move(respond), transfer_response);
}

Response Api::hold(std::string_view id) {
  if (!core::is_valid_transaction_id(id)) {
    return problem_response(Code::invalid_request, "holdId: must be 1-64 characters of [A-Za-z0-9._:-]");
  }
  auto found = engine_.store().transaction(id);
  if (!found.ok() && found.error().code != Code::not_found) return error_response(found.error());
  if (!found.ok() || found.value().type != core::TransactionType::hold) {
    return problem_response(Code::hold_not_found, "hold " + std::string(id) + " does not exist");
  }
  return json_response(200, core::encode_hold(found.value(), now_ms()));
}

Response Api::account_holds(std::string_view number, const Request& request) {
  auto asked = page_asked(request, holds_limit_default);
  if (!asked.ok()) return error_response(asked.error());
  const size_t limit = asked.value().limit;
  std::string_view status;
  if (const std::string* text = query_value(request, "status")) {
    const auto known = core::hold_status_from_name(*text);
    if (!known || *known == core::HoldStatus::none) {
      return problem_response(Code::invalid_request, "status: must be pending, captured, voided or expired");
    }
    status = *text;
  }
  auto exists = engine_.store().account(number);
  if (!exists.ok()) return error_response(exists.error());
  const int64_t now = now_ms();
  std::vector<core::Transaction> kept;
  std::optional<int64_t> next = asked.value().cursor;
  for (size_t pages = 0; pages < holds_pages_scanned_max && kept.size() < limit; ++pages) {
    auto page = engine_.store().holds(number, next, limit - kept.size());
    if (!page.ok()) return error_response(page.error());
    for (auto& hold : page.value().transactions) {
      if (status.empty() || core::shown_hold_status(hold, now) == status) kept.push_back(std::move(hold));
    }
    next = page.value().next_cursor;
    if (!next) break;
  }
  return json_response(200, core::encode_holds(kept, next, now));
}

Response Api::review_holds(const Request& request) {
  auto asked = page_asked(request, holds_limit_default);
  if (!asked.ok()) return error_response(asked.error());
  const std::string* rule = query_value(request, "reviewRule");
  if (rule == nullptr || rule->empty() || rule->size() > core::risk_rule_name_bytes_max) {
    return problem_response(Code::invalid_request, "reviewRule: * for every rule, or a rule's name");
  }
  if (const std::string* status = query_value(request, "status"); status != nullptr && *status != "pending") {
    return problem_response(Code::invalid_request, "status: only pending holds wait for a review");
  }
  auto page = engine_.store().review_holds(*rule == "*" ? std::string_view() : std::string_view(*rule),
                                           asked.value().cursor, asked.value().limit);
  if (!page.ok()) return error_response(page.error());
  // Past its expiry a hold can no longer be captured: not an operator's to look at.
  const int64_t now = now_ms();
  std::erase_if(page.value().transactions,
                [now](const core::Transaction& hold) { return core::shown_hold_status(hold, now) != "pending"; });
  return json_response(200, core::encode_holds(page.value().transactions, page.value().next_cursor, now));
}

size_t Api::body_bytes_max(std::string_view method, std::string_view target) const {
  if (method == "POST" && target.substr(0, target.find('?')) == "/accounts/transactions/batch") {
    return batch_body_bytes_max;
  }
  return 0;  // the server's
}

namespace {

// {"results":[{"index","transactionId","status","code"[,"detail"]}...],"committed":N,"rejected":M}
std::string encode_batch_results(const std::vector<std::string>& ids, const std::vector<core::Outcome>& outcomes) {
  std::string out = "{\"results\":[";
  size_t committed = 0;
  for (size_t i = 0; i < outcomes.size(); ++i) {
    const core::Outcome& outcome = outcomes[i];
    const bool ok = outcome.code == Code::ok;
    committed += ok ? 1 : 0;
    if (i > 0) out += ',';
    out += "{\"index\":" + std::to_string(i) + ",\"transactionId\":";
    out += ids[i].empty() ? std::string("null") : core::json_string(ids[i]);
    out += ",\"status\":\"";
    out += !ok ? "rejected" : outcome.replayed ? "replayed" : "committed";
    out += "\",\"code\":\"";
    out += code_name(outcome.code);
    out += '"';
    if (!ok) out += ",\"detail\":" + core::json_string(outcome.detail);
    if (!ok && outcome.replayed) out += ",\"replayed\":true";
    out += '}';
  }
  out += "],\"committed\":" + std::to_string(committed) + ",\"rejected\":" +
         std::to_string(outcomes.size() - committed) + "}";
  return out;
}

}  // namespace

void Api::post_transaction_batch(Request& request, http::Respond respond) {
  const int64_t now = now_ms();
  auto batch = core::decode_transfer_batch(
      request.body,
      core::is_valid_operator(request.header("X-Operator")) ? request.header("X-Operator") : std::string_view(),
      [now] { return uuid_v7(now); });
  if (!batch.ok()) return respond(error_response(batch.error()));
  auto& items = batch.value().items;
  std::vector<std::string> ids;
  ids.reserve(items.size());
  for (const auto& item : items) ids.push_back(item.id);
  std::vector<core::Outcome> outcomes(items.size());
  const bool any_invalid = std::any_of(items.begin(), items.end(), [](const auto& item) { return !item.transfer; });
  for (size_t i = 0; i < items.size(); ++i) {
    if (!items[i].transfer) outcomes[i] = core::Outcome{.code = items[i].error.code, .detail = items[i].error.detail};
  }
  if (batch.value().atomic && any_invalid) {
    // Linked: one bad item and none is submitted.
    for (size_t i = 0; i < items.size(); ++i) {
      if (items[i].transfer) {
        outcomes[i] = core::Outcome{.code = Code::linked_failed, .detail = "another transfer of the atomic batch is invalid"};
      }
    }
    return respond(json_response(200, encode_batch_results(ids, outcomes)));
  }
  std::vector<core::Operation> operations;
  std::vector<size_t> positions;  // item index of each operation
  operations.reserve(items.size());
  const uint64_t link = batch.value().atomic ? next_link_.fetch_add(1) : 0;
  const auto risk = risk_check(false);
  for (size_t i = 0; i < items.size(); ++i) {
    if (!items[i].transfer) continue;
    items[i].transfer->link = link;
    items[i].transfer->risk = risk;
    operations.emplace_back(std::move(*items[i].transfer));
    positions.push_back(i);
  }
  if (operations.empty()) return respond(json_response(200, encode_batch_results(ids, outcomes)));
  ask_risk_hook(std::move(operations), false, respond,
                [this, respond, ids = std::move(ids), outcomes = std::move(outcomes),
                 positions = std::move(positions)](std::vector<core::Operation> asked) mutable {
                  submit_batch(std::move(asked), respond, std::move(ids), std::move(outcomes), std::move(positions));
                });
}

void Api::submit_batch(std::vector<core::Operation> operations, http::Respond respond, std::vector<std::string> ids,
                       std::vector<core::Outcome> outcomes, std::vector<size_t> positions) {
  const bool queued = engine_.submit_group(
      std::move(operations),
      [respond, stats = engine_.stats(), ids = std::move(ids), outcomes = std::move(outcomes),
       positions = std::move(positions)](std::vector<core::Outcome>&& decided) mutable {
        // Storage down: nothing was decided, so not "rejected" but 503, as for one transfer.
        for (const auto& outcome : decided) {
          if (outcome.code == Code::unavailable || outcome.code == Code::internal) {
            respond(problem_response(outcome.code, outcome.detail + "; send the batch again with the same ids"));
            return;
          }
        }
        for (size_t k = 0; k < decided.size(); ++k) outcomes[positions[k]] = std::move(decided[k]);
        respond_later(respond, stats, [ids = std::move(ids), outcomes = std::move(outcomes)]() {
          return json_response(200, encode_batch_results(ids, outcomes));
        });
      });
  if (!queued) respond(problem_response(Code::overloaded, "the commit queue cannot take the batch"));
}

namespace {

Response balance_response(const Result<core::Account>& found) {
  if (!found.ok()) return error_response(found.error());
  return json_response(200, core::encode_balance(found.value()));
}

Response account_response(const Result<core::Account>& found) {
  if (!found.ok()) return error_response(found.error());
  return account_with_etag(found.value());
}

}  // namespace

void Api::balance(std::string_view number, const Request& request, http::Respond respond) {
  if (const std::string* as_of = query_value(request, "asOf")) return respond(balance_at(number, *as_of));
  if (const std::string* consistency = query_value(request, "consistency")) {
    if (*consistency == "strong") return respond(balance_response(engine_.stored_account(number)));
    if (*consistency != "cached") {
      return respond(problem_response(Code::invalid_request, "consistency: must be strong or cached"));
    }
  }
  read_cached(number, std::move(respond), balance_response);
}

void Api::account(std::string_view number, http::Respond respond) {
  read_cached(number, std::move(respond), account_response);
}

void Api::read_cached(std::string_view number, http::Respond respond,
                      Response (*encode)(const Result<core::Account>&)) {
  // The cache's answer, or on a miss the store's, read on the calling thread.
  const auto answer = [this, encode](const std::optional<core::Account>& hit, std::string_view number) {
    return hit ? encode(*hit) : encode(engine_.stored_account(number));
  };
  if (auto hit = engine_.cached_account_at_once(number)) {  // no callback, no hop
    return respond(answer(*hit, number));
  }
  engine_.cached_account(number, [answer, respond = std::move(respond),
                                  number = std::string(number)](std::optional<core::Account> hit) {
    respond.later([answer, hit = std::move(hit), number] { return answer(hit, number); });
  });
}

Response Api::balance_at(std::string_view number, std::string_view as_of) {
  const auto at_ms = core::parse_rfc3339_ms(as_of);
  if (!at_ms) {
    return problem_response(Code::invalid_request, "asOf: must be an RFC 3339 date-time, e.g. 2026-12-06T23:40:00Z");
  }
  auto account = engine_.store().account(number);  // 404 when it does not exist now
  if (!account.ok()) return error_response(account.error());
  auto at = engine_.store().balance_at(number, *at_ms);
  if (!at.ok()) return error_response(at.error());
  return json_response(200, core::encode_balance_at(account.value(), at.value().balance, at.value().version, *at_ms));
}

Response Api::history(std::string_view number, const Request& request) {
  auto asked = page_asked(request, history_limit_default);
  if (!asked.ok()) return error_response(asked.error());
  auto page = engine_.store().history(number, asked.value().cursor, asked.value().limit);
  if (!page.ok()) return error_response(page.error());
  return json_response(200, core::encode_history(page.value().transactions, page.value().next_cursor));
}

Response Api::transaction(std::string_view id) {
  if (!core::is_valid_transaction_id(id) && !id.starts_with("$deposit:") && !id.starts_with("$expire:")) {
    return problem_response(Code::invalid_request,
                            "transactionId: must be 1-64 characters of [A-Za-z0-9._:-]");
  }
  auto found = engine_.store().transaction(id);
  if (!found.ok()) return error_response(found.error());
  return json_response(200, core::encode_transaction(found.value(), core::TransactionView::current));
}

namespace {

// A report's whole UTC days, from ?from= and ?to= (both included).
Result<std::pair<int64_t, int64_t>> report_days(const Request& request) {
  const std::string* from_text = query_value(request, "from");
  const std::string* to_text = query_value(request, "to");
  const auto from = from_text ? core::parse_utc_day(*from_text) : std::nullopt;
  const auto to = to_text ? core::parse_utc_day(*to_text) : std::nullopt;
  if (!from || !to) return Error{Code::invalid_request, "from, to: dates as YYYY-MM-DD (UTC), 1970 on"};
  if (*to < *from || *to - *from + 1 > core::report_days_max) {
    return Error{Code::invalid_request,
                 "from..to: 1 to " + std::to_string(core::report_days_max) + " days, to on or after from"};
  }
  return std::pair{*from, *to};
}

}  // namespace

Response Api::volumes(const Request& request) {
  auto days = report_days(request);
  if (!days.ok()) return error_response(days.error());
  const std::string* currency = query_value(request, "currency");
  if (!currency || !core::is_valid_currency(*currency)) {
    return problem_response(Code::invalid_request, "currency: ISO 4217, three capital letters");
  }
  const std::string* group = query_value(request, "groupBy");
  if (group && *group != "day" && *group != "hour") {
    return problem_response(Code::invalid_request, "groupBy: day or hour");
  }
  const auto [from, to] = days.value();
  auto volumes = engine_.store().volumes(*currency, from * 24, (to + 1) * 24 - 1);
  if (!volumes.ok()) return error_response(volumes.error());
  return json_response(200, core::encode_volumes(*currency, from, to, group && *group == "hour", volumes.value()));
}

Response Api::statement(std::string_view number, const Request& request) {
  auto days = report_days(request);
  if (!days.ok()) return error_response(days.error());
  const auto [from, to] = days.value();
  storage::Store& store = engine_.store();
  auto account = store.account(number);
  if (!account.ok()) return error_response(account.error());
  auto opening = store.balance_at(number, from * core::day_ms - 1);
  if (!opening.ok()) return error_response(opening.error());
  auto flows = store.flows(number, from, to);
  if (!flows.ok()) return error_response(flows.error());
  core::Statement statement{.account = account.value().number,
                            .currency = account.value().currency,
                            .from_day = from,
                            .to_day = to,
                            .opening_balance = opening.value().balance};
  for (const auto& [type, total] : flows.value()) {
    core::add_daily_total(statement.total, total);
    statement.by_type[type] = total;
  }
  // The closing balance by the statement's own arithmetic, from the same totals: for days
  // past, the balance at the end of `to` (tested against asOf).
  __int128 closing = static_cast<__int128>(statement.opening_balance) + statement.total.credits - statement.total.debits;
  if (closing > std::numeric_limits<int64_t>::max() || closing < std::numeric_limits<int64_t>::min()) {
    return problem_response(Code::internal, "the statement's closing balance overflows");
  }
  statement.closing_balance = static_cast<int64_t>(closing);
  return json_response(200, core::encode_statement(statement));
}

Api::~Api() { engine_.set_commit_listener(nullptr); }

namespace {

struct EventsAsked {
  std::optional<int64_t> after;  // absent: from the oldest kept
  size_t limit = events_limit_default;
  int64_t wait_s = 0;
};

Result<EventsAsked> events_asked(const Request& request) {
  constexpr auto kLimitMax = static_cast<int64_t>(storage::events_limit_max);
  auto after = query_int(request, "after", 0, std::numeric_limits<int64_t>::max(), "an event id (0 or more)");
  if (!after.ok()) return after.error();
  auto limit = query_int(request, "limit", 1, kLimitMax, "an integer from 1 to " + std::to_string(kLimitMax));
  if (!limit.ok()) return limit.error();
  auto wait = query_int(request, "wait", 0, events_wait_s_max, "0 to " + std::to_string(events_wait_s_max) + " seconds");
  if (!wait.ok()) return wait.error();
  return EventsAsked{.after = after.value(),
                     .limit = limit.value() ? static_cast<size_t>(*limit.value()) : events_limit_default,
                     .wait_s = wait.value().value_or(0)};
}

// 410 when the feed no longer keeps what follows `after` (absent: from the oldest kept).
std::optional<Response> expired(std::optional<int64_t> after, int64_t oldest) {
  if (!after || oldest == 0 || *after >= oldest - 1) return std::nullopt;
  return problem_response(Code::events_expired, "events after " + std::to_string(*after) +
                                                    " are no longer kept; the oldest kept is " +
                                                    std::to_string(oldest));
}

// The answer to GET /events, or nullopt when there is nothing past `after` and the
// caller may still wait (`last_chance` false).
std::optional<Response> events_answer(storage::Store& store, const EventsAsked& asked, bool last_chance) {
  const int64_t after = asked.after.value_or(0);
  auto page = store.events_after(after, asked.limit);
  if (!page.ok()) return error_response(page.error());
  if (auto gone = expired(asked.after, page.value().oldest)) return gone;
  const auto& events = page.value().events;
  if (events.empty() && !last_chance) return std::nullopt;
  return json_response(200, core::encode_events(events, events.empty() ? after : events.back().id));
}

}  // namespace

void Api::events(const Request& request, http::Respond respond) {
  auto asked = events_asked(request);
  if (!asked.ok()) return respond(error_response(asked.error()));
  storage::Store& store = engine_.store();
  if (auto answer = events_answer(store, asked.value(), asked.value().wait_s == 0)) {
    return respond(std::move(*answer));
  }
  // Nothing yet: wait without a thread, answered by the next commit with events past
  // `after`, or empty at the deadline.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(asked.value().wait_s);
  const bool waiting = event_waiters_.wait(asked.value().after.value_or(0), deadline, [respond, &store, asked = asked.value()] {
    respond.later([&store, asked] { return *events_answer(store, asked, true); });
  });
  if (!waiting) {
    if (event_waiters_.stopping()) return respond(*events_answer(store, asked.value(), true));  // draining
    respond(problem_response(Code::overloaded, "too many requests wait for events"));
  }
}

namespace {

// One GET /events/stream, on its connection's thread: writes what the feed holds past
// `position` (a page at a time, the next once the client took the last), then waits for a
// commit, with a comment line at each heartbeat. Ends at a drain or a store error; the
// client resumes with Last-Event-ID.
class EventStream : public std::enable_shared_from_this<EventStream> {
 public:
  EventStream(storage::Store& store, engine::EventWaiters& waiters, std::shared_ptr<http::BodyStream> body,
              int64_t position, int64_t heartbeat_ms, std::function<void()> on_close)
      : store_(store),
        waiters_(waiters),
        body_(std::move(body)),
        position_(position),
        heartbeat_(heartbeat_ms),
        on_close_(std::move(on_close)) {}
  ~EventStream() { on_close_(); }
  EventStream(const EventStream&) = delete;
  EventStream& operator=(const EventStream&) = delete;

  // When the client leaves, the stream stops waiting (and frees its place) at once.
  void watch_close() {
    body_->on_close([weak = weak_from_this()] {
      if (auto self = weak.lock()) self->waiters_.cancel(self->ticket_);
    });
  }

  // Writes what is past the position, or waits for it; `woken`: by a commit or the
  // heartbeat, which an empty read answers with a comment line.
  void next(bool woken) {
    if (body_->closed()) return;
    if (waiters_.stopping()) return body_->end();
    auto page = store_.events_after(position_, events_stream_page);
    if (!page.ok()) {
      observe::log(observe::LogLevel::warn, "an event stream ends: the feed could not be read",
                   {{"error", page.error().detail}});
      return body_->end();
    }
    const auto& events = page.value().events;
    // Pruned past this reader while it waited: end it; reconnecting gets 410.
    if (expired(position_, page.value().oldest)) return body_->end();
    auto self = shared_from_this();
    if (events.empty()) {
      if (!woken) return wait();
      return body_->write(": heartbeat\n\n", [self] { self->wait(); });
    }
    body_->write(frames(events), [self] { self->next(false); });
    position_ = events.back().id;
  }

 private:
  void wait() {
    auto self = shared_from_this();
    const auto deadline = engine::EventWaiters::Clock::now() + heartbeat_;
    const bool waiting = waiters_.wait(
        position_, deadline, [self] { self->body_->post([self] { self->next(true); }); }, &ticket_);
    if (!waiting) body_->end();  // stopping: the stream count keeps the waiters under their bound
  }

  // Server-Sent Events (HTML Living Standard 9.2): one event per event, its id and type.
  static std::string frames(const std::vector<core::StoredEvent>& events) {
    size_t room = 0;
    for (const auto& event : events) room += event.body.size() + event.type.size() + 64;
    std::string out;
    out.reserve(room);
    for (const auto& event : events) {
      out += "id: ";
      out += std::to_string(event.id);
      out += "\nevent: ";
      out += event.type;
      out += "\ndata: ";
      core::append_event_json(event, out);  // JSON on one line: no newline inside
      out += "\n\n";
    }
    return out;
  }

  storage::Store& store_;
  engine::EventWaiters& waiters_;
  const std::shared_ptr<http::BodyStream> body_;
  int64_t position_;
  const std::chrono::milliseconds heartbeat_;
  const std::function<void()> on_close_;
  uint64_t ticket_ = 0;  // the wait under way, to cancel when the client leaves
};

}  // namespace

void Api::events_stream(const Request& request, http::Respond respond) {
  // Last-Event-ID (sent by a reconnecting EventSource) wins over ?after=.
  std::optional<int64_t> after;
  if (const std::string_view last = request.header("Last-Event-ID"); !last.empty()) {
    after = core::parse_int64(last);
    if (!after || *after < 0) {
      return respond(problem_response(Code::invalid_request, "Last-Event-ID: must be an event id (0 or more)"));
    }
  } else {
    auto asked = query_int(request, "after", 0, std::numeric_limits<int64_t>::max(), "an event id (0 or more)");
    if (!asked.ok()) return respond(error_response(asked.error()));
    after = asked.value();
  }
  if (stream_waiters_.stopping()) {
    return respond(problem_response(Code::unavailable, "draining: open the stream on another replica"));
  }
  // Expired or unreadable: answered before the stream opens.
  storage::Store& store = engine_.store();
  auto first = store.events_after(after.value_or(0), 1);
  if (!first.ok()) return respond(error_response(first.error()));
  const int64_t oldest = first.value().oldest;
  if (auto gone = expired(after, oldest)) return respond(std::move(*gone));
  if (streams_open_.fetch_add(1) >= options_.events_streams_max) {
    streams_open_.fetch_sub(1);
    return respond(problem_response(Code::overloaded, "too many event streams are open"));
  }
  streams_open_gauge_.Increment();
  Response head;
  head.content_type = "text/event-stream";
  head.headers.emplace_back("Cache-Control", "no-cache");
  head.headers.emplace_back("X-Accel-Buffering", "no");  // a proxy in front must not hold it
  auto body = respond.stream(std::move(head));
  auto stream = std::make_shared<EventStream>(store, stream_waiters_, std::move(body),
                                              after.value_or(std::max<int64_t>(0, oldest - 1)),
                                              options_.events_heartbeat_ms, [this] {
                                                streams_open_.fetch_sub(1);
                                                streams_open_gauge_.Decrement();
                                              });
  stream->watch_close();
  stream->next(false);
}

Status Api::ready() { return engine_.store().ping(); }

}  // namespace balanced::api
