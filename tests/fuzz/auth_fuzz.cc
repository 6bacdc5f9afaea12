// libFuzzer target: what the gateway reads of a request before it forwards anything.
// The JWT verifier and the JWKS parser, the bearer header, base64url, the authorization
// gate (path, headers and body of any shape, behind a token that verifies), request ids,
// traceparent, CIDRs and rate-limit policies must never crash, whatever the bytes; what
// they accept must be well formed.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "contract/routes.h"
#include "auth/base64url.h"
#include "auth/gate.h"
#include "auth/jwt.h"
#include "auth/sign.h"
#include "gateway/rate_limit.h"
#include "gateway/request_info.h"
#include "http/tracing.h"

namespace {

using namespace balanced;

struct Fixture {
  auth::KeyPointer key = auth::generate_key(auth::Algorithm::es256).value();
  auth::KeySource keys{auth::KeySet::parse("{\"keys\":[" +
                                           auth::public_jwk(key.get(), auth::Algorithm::es256, "k").value() + "]}")
                           .value()};
  auth::Gate gate{auth::VerifierOptions{.issuer = "i", .audience = "a"}, keys, nullptr, [] { return int64_t{1000}; }};
  std::string token = auth::sign_jwt(key.get(), auth::Algorithm::es256, "k",
                                     R"({"sub":"s","iss":"i","aud":"a","exp":5000,"scope":"balances:read transactions:write accounts:write","accounts":["a1"]})")
                          .value();
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture fixture;
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  // Tokens and keys.
  const auth::Verifier verifier(auth::VerifierOptions{.issuer = "i", .audience = "a", .hs256_secret = std::string(32, 'k')});
  const auto verified = verifier.verify(input, *fixture.keys.current().keys, 1000);
  if (verified.ok() && verified.principal->subject.empty()) __builtin_trap();
  if (auto keys = auth::KeySet::parse(input); keys.ok() && keys.value().size() > auth::jwks_keys_max) __builtin_trap();
  (void)auth::KeySet::parse_key(input);
  if (auto token = auth::bearer_token(input); token && (token->empty() || token->find(' ') != std::string_view::npos)) {
    __builtin_trap();
  }
  if (auto bytes = auth::base64url_decode(input); bytes && auth::base64url_encode(*bytes) != input) __builtin_trap();

  // The gate, with a good token, on a path and body made of the input.
  const size_t cut = input.find('\n');
  http::Request request;
  request.method = !input.empty() && (input[0] & 1) ? "POST" : "GET";
  request.path = std::string(input.substr(0, cut));
  request.body = cut == std::string_view::npos ? std::string() : std::string(input.substr(cut + 1));
  request.headers = {{"Authorization", "Bearer " + fixture.token}, {"Idempotency-Key", std::string(input.substr(0, 80))},
                     {"X-Request-Id", std::string(input)}, {"traceparent", std::string(input)},
                     {"X-Forwarded-For", std::string(input)}};
  const auto match = contract::api_router().match(request.method, request.path);
  auto admission = fixture.gate.admit(request, match.route, match);
  if (!admission.deny && !admission.principal) __builtin_trap();
  if (!admission.deny && request.header("X-Operator") != "s") __builtin_trap();
  if (admission.principal) {
    http::Response answer{200, "application/json", std::string(input), {}};
    (void)fixture.gate.check_answer(*admission.principal, answer);
  }

  // Request ids, trace context, networks, rate policies.
  const std::string id = http::request_id_of(request);
  if (id.empty() || id.size() > 128) __builtin_trap();
  std::string trace_id;
  const std::string traceparent = http::traceparent_of(request, trace_id);
  if (traceparent.size() != 55 || trace_id.size() != 32) __builtin_trap();
  if (auto cidr = gateway::parse_cidr(input)) {
    (void)cidr->contains(input);
    (void)gateway::client_address("10.0.0.1", input, {*cidr});
  }
  if (auto policy = gateway::parse_rate_policy(input); policy && (!(policy->rate_per_s > 0) || policy->burst < 1)) {
    __builtin_trap();
  }
  return 0;
}
