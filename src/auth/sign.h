// Making keys and tokens, for `balancectl keygen` and `balancectl token` (and tests):
// the development side of the issuer, so the secure path can be tried without one.
#pragma once

#include <string>
#include <string_view>

#include "auth/jwk.h"

namespace balanced::auth {

// RS256/PS256: RSA 2048; ES256: P-256; EdDSA: Ed25519.
Result<KeyPointer> generate_key(Algorithm algorithm);
Result<std::string> private_key_pem(EVP_PKEY* key);
Result<KeyPointer> read_private_key_pem(std::string_view pem);
// The algorithm a key signs with by default (RSA: RS256).
Result<Algorithm> default_algorithm(EVP_PKEY* key);
// The public half as a JWK object (RFC 7517/7518/8037), with kid, alg and use "sig".
Result<std::string> public_jwk(EVP_PKEY* key, Algorithm algorithm, std::string_view kid);
// A compact JWS of `payload_json` with header {alg, typ: "at+jwt", kid}.
Result<std::string> sign_jwt(EVP_PKEY* key, Algorithm algorithm, std::string_view kid,
                             std::string_view payload_json);

}  // namespace balanced::auth
