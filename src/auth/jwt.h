// Verifying JWT access tokens (RFC 7519, JWS compact form of RFC 7515; RFC 9068
// profile). Pure: the key set and the time come in as arguments.
//
// Rejected, each with its reason: more than token_bytes_max bytes; not three base64url
// parts of JSON objects; "alg" none, missing or one we do not verify; an HS256 token
// when no secret is configured, or one whose kid names a public key; a kid not in the
// key set (or none when the set has several keys); an "alg" other than the key's; an
// unknown or malformed "crit"; a bad signature; "exp" missing, not a number, or passed
// by more than the leeway; "nbf" ahead by more than the leeway; "iss" not the issuer;
// "aud" (string or array) without the audience; "sub" missing or not a string.
// "jku", "x5u", "jwk" and "x5c" are never followed: keys come only from the key set.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/jwk.h"

namespace balanced::auth {

enum class Failure {
  missing,
  malformed,
  too_large,
  unsupported_alg,
  alg_mismatch,
  unknown_kid,
  bad_signature,
  crit,
  expired,
  not_yet_valid,
  bad_issuer,
  bad_audience,
  missing_claim,
};
inline constexpr size_t failure_count = 13;
// The stable name, as the tests and the metrics' `reason` label use it.
std::string_view failure_name(Failure failure);

// Who a verified token speaks for.
struct Principal {
  std::string subject;               // "sub"
  std::vector<std::string> scopes;   // "scope", split on spaces, sorted
  std::vector<std::string> accounts; // "accounts", sorted
  int64_t expires_s = 0;             // "exp"
  bool has_scope(std::string_view scope) const;
  bool acts_for(std::string_view account) const;
};

struct VerifierOptions {
  std::string issuer;    // "iss" must equal it
  std::string audience;  // "aud" must contain it
  int64_t leeway_s = 30;
  std::string hs256_secret;  // empty: HS256 tokens are refused
  size_t token_bytes_max = 8192;
};

struct Verification {
  std::shared_ptr<const Principal> principal;  // set when the token is good
  Failure failure = Failure::malformed;        // otherwise, why not
  std::string detail;                          // for logs: never holds the token
  bool ok() const { return principal != nullptr; }
};

class Verifier {
 public:
  explicit Verifier(VerifierOptions options) : options_(std::move(options)) {}
  Verification verify(std::string_view token, const KeySet& keys, int64_t now_s) const;
  const VerifierOptions& options() const { return options_; }

 private:
  const VerifierOptions options_;
};

// The bearer token of an Authorization header (RFC 6750 2.1), or nullopt.
std::optional<std::string_view> bearer_token(std::string_view authorization);

}  // namespace balanced::auth
