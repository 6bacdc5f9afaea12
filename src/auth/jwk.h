// JSON Web Keys (RFC 7517) and the signature algorithms we accept (RFC 7518, RFC 8037),
// on OpenSSL 3's EVP interface. A key is bound to exactly one algorithm: its "alg"
// member, or the one its type implies (RSA: RS256; P-256: ES256; Ed25519: EdDSA), so a
// token can never choose how its own signature is checked.
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/codes.h"

namespace balanced::auth {

enum class Algorithm { rs256, ps256, es256, eddsa, hs256 };

std::optional<Algorithm> algorithm_from_name(std::string_view name);
std::string_view algorithm_name(Algorithm algorithm);

struct KeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using KeyPointer = std::unique_ptr<EVP_PKEY, KeyDeleter>;

// The smallest RSA modulus we accept (RFC 7518 3.3 asks for 2048 bits).
inline constexpr int rsa_bits_min = 2048;
// Keys a JWKS may hold: a key set is read on every rotation and searched per token.
inline constexpr size_t jwks_keys_max = 64;
inline constexpr size_t jwks_bytes_max = 256 * 1024;

struct Key {
  std::string kid;  // may be empty when the set has one key
  Algorithm algorithm = Algorithm::rs256;
  std::shared_ptr<EVP_PKEY> key;
};

// A parsed JWKS. Keys that are not for signatures ("use" other than "sig") or of a type
// we do not verify are skipped, not errors, so that a shared JWKS may carry them.
class KeySet {
 public:
  static Result<KeySet> parse(std::string_view json);
  static Result<Key> parse_key(std::string_view json);  // one JWK object
  // The key of that kid; with an empty kid, the only key when there is exactly one.
  const Key* find(std::string_view kid) const;
  size_t size() const { return keys_.size(); }
  const std::vector<Key>& keys() const { return keys_; }

 private:
  std::vector<Key> keys_;
};

// Checks `signature` over `signing_input` with `key` under `algorithm` (which the caller
// has already matched to the key). ES256 signatures are the 64-byte r||s of RFC 7518 3.4.
bool verify_signature(Algorithm algorithm, EVP_PKEY* key, std::string_view signing_input,
                      std::string_view signature);
// HMAC-SHA256, compared in constant time.
bool verify_hs256(std::string_view secret, std::string_view signing_input,
                  std::string_view signature);

}  // namespace balanced::auth
