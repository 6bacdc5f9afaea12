#include "auth/jwt.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>

#include "auth/base64url.h"

namespace balanced::auth {
namespace json = boost::json;
namespace {

Verification reject(Failure failure, std::string detail) {
  Verification result;
  result.failure = failure;
  result.detail = std::move(detail);
  return result;
}

std::optional<json::object> decode_object(std::string_view part) {
  auto bytes = base64url_decode(part);
  if (!bytes) return std::nullopt;
  boost::system::error_code ec;
  json::value value = json::parse(*bytes, ec);
  if (ec || !value.is_object()) return std::nullopt;
  return std::move(value.as_object());
}

// A NumericDate (RFC 7519 2): a JSON number, possibly with a fraction.
std::optional<int64_t> numeric_date(const json::value* value) {
  if (value == nullptr) return std::nullopt;
  if (value->is_int64()) return value->as_int64();
  if (value->is_uint64()) {
    return value->as_uint64() > static_cast<uint64_t>(INT64_MAX / 2) ? INT64_MAX / 2
                                                                      : static_cast<int64_t>(value->as_uint64());
  }
  if (value->is_double()) {
    const double d = value->as_double();
    if (!std::isfinite(d)) return std::nullopt;
    if (d > 4e18) return INT64_MAX / 2;
    if (d < -4e18) return INT64_MIN / 2;
    return static_cast<int64_t>(std::floor(d));
  }
  return std::nullopt;
}

}  // namespace

std::string_view failure_name(Failure failure) {
  switch (failure) {
    case Failure::missing: return "missing";
    case Failure::malformed: return "malformed";
    case Failure::too_large: return "too_large";
    case Failure::unsupported_alg: return "unsupported_alg";
    case Failure::alg_mismatch: return "alg_mismatch";
    case Failure::unknown_kid: return "unknown_kid";
    case Failure::bad_signature: return "bad_signature";
    case Failure::crit: return "crit";
    case Failure::expired: return "expired";
    case Failure::not_yet_valid: return "not_yet_valid";
    case Failure::bad_issuer: return "bad_issuer";
    case Failure::bad_audience: return "bad_audience";
    case Failure::missing_claim: return "missing_claim";
  }
  return "malformed";
}

bool Principal::has_scope(std::string_view scope) const {
  return std::binary_search(scopes.begin(), scopes.end(), scope);
}

bool Principal::acts_for(std::string_view account) const {
  return std::binary_search(accounts.begin(), accounts.end(), account);
}

std::optional<std::string_view> bearer_token(std::string_view authorization) {
  // The scheme is case-insensitive; one or more spaces; then the token68.
  if (authorization.size() < 7) return std::nullopt;
  std::string scheme(authorization.substr(0, 6));
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (scheme != "bearer" || authorization[6] != ' ') return std::nullopt;
  std::string_view token = authorization.substr(7);
  while (token.starts_with(' ')) token.remove_prefix(1);
  while (token.ends_with(' ')) token.remove_suffix(1);
  if (token.empty() || token.find(' ') != std::string_view::npos) return std::nullopt;
  return token;
}

Verification Verifier::verify(std::string_view token, const KeySet& keys, int64_t now_s) const {
  if (token.empty()) return reject(Failure::malformed, "empty token");
  if (token.size() > options_.token_bytes_max) {
    return reject(Failure::too_large, "token longer than " + std::to_string(options_.token_bytes_max) + " bytes");
  }
  const size_t first = token.find('.');
  const size_t second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) {
    return reject(Failure::malformed, "not three dot-separated parts");
  }
  const std::string_view signing_input = token.substr(0, second);
  auto header = decode_object(token.substr(0, first));
  if (!header) return reject(Failure::malformed, "header is not base64url JSON object");
  auto payload = decode_object(token.substr(first + 1, second - first - 1));
  if (!payload) return reject(Failure::malformed, "payload is not a base64url JSON object");
  auto signature = base64url_decode(token.substr(second + 1));
  if (!signature) return reject(Failure::malformed, "signature is not base64url");

  // The algorithm and the key.
  const json::value* alg_value = header->if_contains("alg");
  if (alg_value == nullptr || !alg_value->is_string()) return reject(Failure::unsupported_alg, "no alg");
  const auto algorithm = algorithm_from_name(alg_value->as_string());
  if (!algorithm) {
    return reject(Failure::unsupported_alg, "alg " + std::string(alg_value->as_string()) + " is not accepted");
  }
  std::string_view kid;
  if (const json::value* kid_value = header->if_contains("kid")) {
    if (!kid_value->is_string()) return reject(Failure::malformed, "kid is not a string");
    kid = kid_value->as_string();
  }
  if (const json::value* crit = header->if_contains("crit")) {
    // We understand no extension (RFC 7515 4.1.11): any crit is one we cannot honour.
    return reject(Failure::crit, crit->is_array() ? "unknown crit extension" : "crit is not an array");
  }
  const Key* key = nullptr;
  if (*algorithm == Algorithm::hs256) {
    if (options_.hs256_secret.empty()) return reject(Failure::unsupported_alg, "HS256 is not enabled");
    // A kid that names a public key means someone signed with that key's public bytes.
    if (!kid.empty() && keys.find(kid) != nullptr) {
      return reject(Failure::alg_mismatch, "HS256 token names a public key");
    }
  } else {
    key = keys.find(kid);
    if (key == nullptr) {
      return reject(Failure::unknown_kid, kid.empty() ? "no kid, and the key set has several keys"
                                                      : "unknown kid " + std::string(kid));
    }
    if (key->algorithm != *algorithm) {
      return reject(Failure::alg_mismatch, "alg " + std::string(alg_value->as_string()) +
                                               " but the key is for " +
                                               std::string(algorithm_name(key->algorithm)));
    }
  }
  const bool signed_ok = key == nullptr
                             ? verify_hs256(options_.hs256_secret, signing_input, *signature)
                             : verify_signature(*algorithm, key->key.get(), signing_input, *signature);
  if (!signed_ok) return reject(Failure::bad_signature, "signature does not verify");

  // The claims.
  const json::object& claims = *payload;
  const auto exp = numeric_date(claims.if_contains("exp"));
  if (!exp) return reject(Failure::missing_claim, "exp missing or not a number");
  if (now_s - options_.leeway_s >= *exp) return reject(Failure::expired, "token expired");
  if (claims.contains("nbf")) {
    const auto nbf = numeric_date(claims.if_contains("nbf"));
    if (!nbf) return reject(Failure::malformed, "nbf is not a number");
    if (*nbf > now_s + options_.leeway_s) return reject(Failure::not_yet_valid, "token not valid yet");
  }
  const json::value* iss = claims.if_contains("iss");
  if (!options_.issuer.empty() &&
      (iss == nullptr || !iss->is_string() || iss->as_string() != options_.issuer)) {
    return reject(Failure::bad_issuer, "iss is not the configured issuer");
  }
  if (!options_.audience.empty()) {
    const json::value* aud = claims.if_contains("aud");
    bool found = false;
    if (aud != nullptr && aud->is_string()) {
      found = aud->as_string() == options_.audience;
    } else if (aud != nullptr && aud->is_array()) {
      for (const json::value& entry : aud->as_array()) {
        found = found || (entry.is_string() && entry.as_string() == options_.audience);
      }
    }
    if (!found) return reject(Failure::bad_audience, "aud does not contain the configured audience");
  }
  const json::value* sub = claims.if_contains("sub");
  if (sub == nullptr || !sub->is_string() || sub->as_string().empty()) {
    return reject(Failure::missing_claim, "sub missing or not a string");
  }

  auto principal = std::make_shared<Principal>();
  principal->subject = std::string(sub->as_string());
  principal->expires_s = *exp;
  if (const json::value* scope = claims.if_contains("scope"); scope != nullptr && scope->is_string()) {
    std::string_view rest = scope->as_string();
    while (!rest.empty()) {
      const size_t space = rest.find(' ');
      if (space != 0) principal->scopes.emplace_back(rest.substr(0, space));
      if (space == std::string_view::npos) break;
      rest.remove_prefix(space + 1);
    }
  }
  if (const json::value* accounts = claims.if_contains("accounts");
      accounts != nullptr && accounts->is_array()) {
    for (const json::value& entry : accounts->as_array()) {
      if (entry.is_string()) principal->accounts.emplace_back(entry.as_string());
    }
  }
  std::sort(principal->scopes.begin(), principal->scopes.end());
  std::sort(principal->accounts.begin(), principal->accounts.end());
  Verification result;
  result.principal = std::move(principal);
  return result;
}

}  // namespace balanced::auth
