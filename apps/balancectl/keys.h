// balancectl keygen and token: a development issuer, so the secure path can be tried
// without an identity provider.
#pragma once

#include <cstdint>
#include <string>

namespace balanced::keys {

struct KeygenOptions {
  std::string algorithm = "ES256";  // RS256, PS256, ES256 or EdDSA
  std::string kid;
  std::string key_out;   // the private key, PEM, written 0600
  std::string jwks_out;  // the JWKS; an existing one keeps its other keys (rotation)
};
int run_keygen(const KeygenOptions& options);

struct TokenOptions {
  std::string key;        // PEM private key
  std::string kid;
  std::string algorithm;  // default: the key's (RSA: RS256)
  std::string subject;
  std::string scope;
  std::string accounts;   // comma-separated
  int64_t ttl_s = 3600;
  std::string issuer;
  std::string audience;
  int64_t count = 0;           // > 0: that many tokens, subjects <sub-prefix>0.., one account each
  std::string subject_prefix = "p";
  std::string account_prefix = "a";
};
int run_token(const TokenOptions& options);

}  // namespace balanced::keys
