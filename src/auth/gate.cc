#include "auth/gate.h"

#include <boost/json.hpp>

#include "core/json_codec.h"
#include "core/validate.h"
#include "core/json_strict.h"

namespace balanced::auth {
namespace json = boost::json;
using contract::Route;

namespace {

bool starts_with_ignoring_case(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && http::iequals(text.substr(0, prefix.size()), prefix);
}

// Stands for "no id given" while decoding: a valid id, so decoding goes on; a client
// that sends exactly it is only not retried.
constexpr std::string_view kGenerated = "gate-no-id-0b9e4c1d";

}  // namespace

bool is_identity_header(std::string_view name) {
  return starts_with_ignoring_case(name, "X-Auth-") || starts_with_ignoring_case(name, "X-User") ||
         http::iequals(name, "X-Forwarded-User") || http::iequals(name, "X-Operator") ||
         http::iequals(name, contract::acting_for_header) || http::iequals(name, contract::risk_reviewer_header);
}

GateStats::GateStats(observe::Registry& registry, const std::string& prefix)
    : forbidden(registry.counter(prefix + "_auth_forbidden_total",
                                 "Requests refused 403: scope missing or someone else's account")),
      cache_hits(registry.counter(prefix + "_auth_token_cache_hits_total",
                                  "Tokens found already verified")),
      verifications(registry.counter(prefix + "_auth_token_verifications_total",
                                     "Tokens whose signature and claims were checked")) {
  auto& family = registry.counters(prefix + "_auth_failures_total",
                                   "Requests refused 401, by reason");
  for (size_t i = 0; i < failure_count; ++i) {
    failures[i] = &family.Add({{"reason", std::string(failure_name(static_cast<Failure>(i)))}});
  }
}

int64_t Gate::system_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Gate::Gate(VerifierOptions options, KeySource& keys, GateStats* stats, Now now,
           size_t cache_entries_max)
    : verifier_(std::move(options)), keys_(keys), stats_(stats), now_(std::move(now)),
      cache_(cache_entries_max) {}

Verification Gate::verify(std::string_view token) {
  const int64_t now = now_();
  const KeySource::Snapshot snapshot = keys_.current();
  if (auto principal = cache_.find(token, snapshot.generation, now, verifier_.options().leeway_s)) {
    if (stats_) stats_->cache_hits.Increment();
    Verification hit;
    hit.principal = std::move(principal);
    return hit;
  }
  if (stats_) stats_->verifications.Increment();
  Verification verification = verifier_.verify(token, *snapshot.keys, now);
  if (verification.ok()) {
    cache_.put(token, snapshot.generation, verification.principal);
  } else if (verification.failure == Failure::unknown_kid) {
    keys_.unknown_kid();  // the next request may find the new key
  }
  return verification;
}

http::Response Gate::unauthorized(const Verification& verification, bool token_sent) {
  if (stats_) stats_->failures[static_cast<size_t>(verification.failure)]->Increment();
  http::Response response = http::problem_response(
      problems::unauthorized, token_sent ? "invalid token: " + std::string(failure_name(verification.failure))
                                         : "a bearer token is required");
  // RFC 6750 3: no error code when the request carried no token at all.
  response.headers.emplace_back(
      "WWW-Authenticate", token_sent ? "Bearer realm=\"balanced\", error=\"invalid_token\", "
                                       "error_description=\"" +
                                           std::string(failure_name(verification.failure)) + "\""
                                     : "Bearer realm=\"balanced\"");
  return response;
}

http::Response Gate::forbidden(std::string detail, bool insufficient_scope) {
  if (stats_) stats_->forbidden.Increment();
  http::Response response = http::problem_response(problems::forbidden, detail);
  if (insufficient_scope) {
    response.headers.emplace_back("WWW-Authenticate",
                                  "Bearer realm=\"balanced\", error=\"insufficient_scope\"");
  }
  return response;
}

Admission Gate::admit(http::Request& request, int route, const http::Router::Match& match) {
  Admission admission;
  std::erase_if(request.headers, [](const auto& header) { return is_identity_header(header.first); });
  const std::string_view authorization = request.header("Authorization");
  const auto token = bearer_token(authorization);
  if (!token) {
    Verification none;
    none.failure = authorization.empty() ? Failure::missing : Failure::malformed;
    admission.deny = unauthorized(none, !authorization.empty());
    return admission;
  }
  Verification verification = verify(*token);
  if (!verification.ok()) {
    admission.deny = unauthorized(verification, true);
    return admission;
  }
  admission.principal = verification.principal;  // who, even when refused (for the log)
  const Principal& principal = *verification.principal;
  const bool admin = principal.has_scope("admin");
  auto need_scope = [&](std::string_view scope) {
    if (admin || principal.has_scope(scope)) return true;
    admission.deny = forbidden("scope " + std::string(scope) + " is required", true);
    return false;
  };
  auto need_account = [&](std::string_view account) {
    if (admin || principal.acts_for(account)) return true;
    admission.deny = forbidden("the token does not act for account " + std::string(account), false);
    return false;
  };
  switch (static_cast<Route>(route)) {
    case Route::get_account:
    case Route::get_balance:
    case Route::get_history:
      if (!need_scope("balances:read") || !need_account(match.param(0))) return admission;
      admission.idempotent = true;
      break;
    case Route::get_transaction:
      if (!need_scope("balances:read")) return admission;
      admission.check_answer = !admin;
      admission.idempotent = true;
      break;
    case Route::post_transaction: {
      if (!need_scope("transactions:write")) return admission;
      // The same decoder balanced uses, so both read the same source account.
      auto transfer = core::decode_transfer(
          request.body, core::TransferHeaders{request.header("Idempotency-Key"), {}}, kGenerated);
      if (!transfer.ok()) {
        admission.deny = http::problem_response(
            http::Problem{400, "invalid_request", "Invalid request"}, transfer.error().detail);
        return admission;
      }
      admission.body_checked = true;
      if (!need_account(transfer.value().source)) return admission;
      admission.idempotent = transfer.value().id != kGenerated;
      break;
    }
    case Route::post_transaction_batch: {
      if (!need_scope("transactions:write")) return admission;
      // Every item's source must be the principal's: one that is not (or is no string)
      // refuses the whole batch. Shape errors are balanced's to report, per item.
      // Read as balanced reads it (a repeated name is refused, never last-wins).
      auto parsed = core::parse_strict_json(request.body);
      if (!parsed.ok()) {
        admission.deny = http::problem_response(http::problems::invalid_request, parsed.error().detail);
        return admission;
      }
      admission.body_checked = true;
      const json::value& body = parsed.value();
      const json::value* transfers = body.is_object() ? body.as_object().if_contains("transfers") : nullptr;
      if (transfers == nullptr || !transfers->is_array()) {
        admission.deny = http::problem_response(http::problems::invalid_request, "transfers: must be an array");
        return admission;
      }
      bool every_item_has_an_id = true;
      for (const json::value& item : transfers->as_array()) {
        const json::value* source = item.is_object() ? item.as_object().if_contains("sourceAccountNumber") : nullptr;
        if (!admin && (source == nullptr || !source->is_string())) {
          admission.deny = forbidden("every transfer of a batch needs a sourceAccountNumber the token acts for", false);
          return admission;
        }
        if (source != nullptr && source->is_string() && !need_account(source->as_string())) return admission;
        const json::value* id = item.is_object() ? item.as_object().if_contains("transactionId") : nullptr;
        every_item_has_an_id = every_item_has_an_id && id != nullptr && id->is_string();
      }
      admission.idempotent = every_item_has_an_id;
      break;
    }
    case Route::create_account:
      if (!need_scope("accounts:write")) return admission;
      break;
    case Route::patch_account:  // limits, metadata and states: an administrator's
      if (!need_scope("accounts:admin")) return admission;
      break;
    case Route::post_deposit:
    case Route::post_withdrawal: {
      // A deposit is a payment rail's to make, into any account; a withdrawal is the
      // account holder's (DESIGN.md section 10).
      const bool deposit = static_cast<Route>(route) == Route::post_deposit;
      if (!need_scope(deposit ? "deposits:write" : "withdrawals:write")) return admission;
      if (!deposit && !need_account(match.param(0))) return admission;
      auto posting = core::decode_posting(
          deposit ? core::TransactionType::deposit : core::TransactionType::withdrawal, match.param(0),
          request.body, core::TransferHeaders{request.header("Idempotency-Key"), {}}, kGenerated);
      if (!posting.ok()) {
        admission.deny = http::problem_response(http::problems::invalid_request, posting.error().detail);
        return admission;
      }
      admission.body_checked = true;
      admission.idempotent = posting.value().id != kGenerated;
      break;
    }
    case Route::post_hold: {  // as a transfer: the payer's to make
      if (!need_scope("transactions:write")) return admission;
      auto hold = core::decode_hold(request.body, core::TransferHeaders{request.header("Idempotency-Key"), {}},
                                    kGenerated);
      if (!hold.ok()) {
        admission.deny = http::problem_response(http::problems::invalid_request, hold.error().detail);
        return admission;
      }
      admission.body_checked = true;
      if (!need_account(hold.value().source)) return admission;
      admission.idempotent = hold.value().id != kGenerated;
      break;
    }
    case Route::get_hold:  // its parties are known from the answer only
      if (!need_scope("balances:read")) return admission;
      admission.check_answer = !admin;
      admission.idempotent = true;
      break;
    case Route::get_account_holds:
    case Route::get_statement:  // DESIGN.md section 11: n in accounts
      if (!need_scope("balances:read") || !need_account(match.param(0))) return admission;
      admission.idempotent = true;
      break;
    case Route::get_events:  // the whole feed: every account's changes
      if (!need_scope("events:read")) return admission;
      admission.idempotent = true;
      for (const auto& [name, value] : request.query) {
        // A wait balanced refuses (over events_wait_s_max) is answered at once: no longer timeout.
        const auto wait_s = name == "wait" ? core::parse_int64(value) : std::nullopt;
        if (wait_s && *wait_s > 0 && *wait_s <= contract::events_wait_s_max) {
          admission.upstream_timeout_ms = *wait_s * 1000 + events_wait_upstream_slack_ms;
        }
      }
      break;
    case Route::get_volumes:  // every account's volumes: no account rule
      if (!need_scope("reports:read")) return admission;
      admission.idempotent = true;
      break;
    case Route::get_review_holds:  // an operator's queue: every account's holds
      if (!need_scope("risk:review")) return admission;
      admission.idempotent = true;
      break;
    case Route::get_events_stream:  // the same feed, as Server-Sent Events
      if (!need_scope("events:read")) return admission;
      admission.idempotent = true;
      admission.stream = true;
      break;
    case Route::capture_hold:
    case Route::void_hold:
    case Route::post_refund: {
      // The payee's (a hold's destination, a refunded transaction's): known from the
      // stored row only, so balanced's committer checks it against the accounts named
      // here, before anything changes. A risk reviewer (scope risk:review) settles the
      // holds a risk review made, whoever their parties are: the committer refuses it any
      // other (it acts for no account).
      const auto route_kind = static_cast<Route>(route);
      const bool reviewer = !admin && route_kind != Route::post_refund && principal.has_scope("risk:review");
      if (!reviewer && !need_scope("transactions:write")) return admission;
      const core::TransferHeaders headers{request.header("Idempotency-Key"), {}};
      Result<std::string> id = std::string();
      if (route_kind == Route::post_refund) {
        auto refund = core::decode_refund(match.param(0), request.body, headers, kGenerated);
        id = refund.ok() ? Result<std::string>(refund.value().id) : Result<std::string>(refund.error());
      } else {
        auto settle = core::decode_settle(route_kind == Route::capture_hold ? core::TransactionType::capture
                                                                            : core::TransactionType::void_,
                                          match.param(0), request.body, headers, kGenerated);
        id = settle.ok() ? Result<std::string>(settle.value().id) : Result<std::string>(settle.error());
      }
      if (!id.ok()) {
        admission.deny = http::problem_response(http::problems::invalid_request, id.error().detail);
        return admission;
      }
      admission.body_checked = true;
      admission.idempotent = id.value() != kGenerated;
      if (reviewer) request.set_header(std::string(contract::risk_reviewer_header), "true");
      if (!admin) {
        // A reviewer without transactions:write acts for no account: review holds only.
        const bool for_accounts = !reviewer || principal.has_scope("transactions:write");
        std::string accounts;
        for (const auto& account : for_accounts ? principal.accounts : std::vector<std::string>{}) {
          if (!core::is_valid_account_number(account)) continue;  // never a comma in the list
          if (!accounts.empty()) accounts.push_back(',');
          accounts += account;
        }
        request.set_header(std::string(contract::acting_for_header), std::move(accounts));
      }
      break;
    }
    default:
      admission.deny = http::problem_response(http::problems::not_found, "no route for " + request.path);
      return admission;
  }
  request.set_header("X-Operator", principal.subject);
  return admission;
}

std::optional<http::Response> Gate::check_answer(const Principal& principal,
                                                 const http::Response& answer) {
  if (answer.status < 200 || answer.status >= 300) return std::nullopt;
  boost::system::error_code ec;
  const json::value value = json::parse(answer.body, ec);
  if (!ec && value.is_object()) {
    const json::object& transaction = value.as_object();
    for (const char* party : {"sourceAccountNumber", "destinationAccountNumber"}) {
      const json::value* account = transaction.if_contains(party);
      if (account != nullptr && account->is_string() && principal.acts_for(account->as_string())) {
        return std::nullopt;
      }
    }
  }
  return forbidden("the token acts for neither party of this transaction", false);
}

}  // namespace balanced::auth
