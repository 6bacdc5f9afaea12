#include "auth/jwk.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include <boost/json.hpp>

#include "auth/base64url.h"

namespace balanced::auth {
namespace json = boost::json;
namespace {

struct BnDeleter {
  void operator()(BIGNUM* n) const { BN_free(n); }
};
struct ParamBuildDeleter {
  void operator()(OSSL_PARAM_BLD* b) const { OSSL_PARAM_BLD_free(b); }
};
struct ParamDeleter {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct PkeyContextDeleter {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};
struct MdContextDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

Error bad(std::string why) { return Error{Code::invalid_request, "JWK: " + std::move(why)}; }

// A base64url member of the key, decoded; nullopt when absent or malformed.
std::optional<std::string> member(const json::object& object, std::string_view name) {
  const json::value* value = object.if_contains(name);
  if (value == nullptr || !value->is_string()) return std::nullopt;
  return base64url_decode(value->as_string());
}

std::string_view string_member(const json::object& object, std::string_view name) {
  const json::value* value = object.if_contains(name);
  if (value == nullptr || !value->is_string()) return {};
  return value->as_string();
}

Result<KeyPointer> from_params(const char* type, OSSL_PARAM_BLD* builder) {
  std::unique_ptr<OSSL_PARAM, ParamDeleter> params(OSSL_PARAM_BLD_to_param(builder));
  std::unique_ptr<EVP_PKEY_CTX, PkeyContextDeleter> context(
      EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* key = nullptr;
  if (!params || !context || EVP_PKEY_fromdata_init(context.get()) != 1 ||
      EVP_PKEY_fromdata(context.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return bad(std::string("cannot import the ") + type + " key");
  }
  KeyPointer owned(key);
  // A point not on the curve, an even modulus: refuse what would verify nonsense.
  std::unique_ptr<EVP_PKEY_CTX, PkeyContextDeleter> check(
      EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) {
    return bad(std::string("the ") + type + " public key does not check");
  }
  return owned;
}

Result<KeyPointer> rsa_key(const json::object& object) {
  auto n = member(object, "n");
  auto e = member(object, "e");
  if (!n || !e || n->empty() || e->empty()) return bad("RSA key needs n and e");
  std::unique_ptr<BIGNUM, BnDeleter> modulus(
      BN_bin2bn(reinterpret_cast<const unsigned char*>(n->data()), static_cast<int>(n->size()), nullptr));
  std::unique_ptr<BIGNUM, BnDeleter> exponent(
      BN_bin2bn(reinterpret_cast<const unsigned char*>(e->data()), static_cast<int>(e->size()), nullptr));
  if (!modulus || !exponent) return bad("RSA key: bad numbers");
  if (BN_num_bits(modulus.get()) < rsa_bits_min) {
    return bad("RSA key shorter than " + std::to_string(rsa_bits_min) + " bits");
  }
  std::unique_ptr<OSSL_PARAM_BLD, ParamBuildDeleter> builder(OSSL_PARAM_BLD_new());
  if (!builder || OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_N, modulus.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_E, exponent.get()) != 1) {
    return bad("RSA key: out of memory");
  }
  return from_params("RSA", builder.get());
}

Result<KeyPointer> ec_key(const json::object& object) {
  if (string_member(object, "crv") != "P-256") return bad("EC key: only crv P-256 is supported");
  auto x = member(object, "x");
  auto y = member(object, "y");
  if (!x || !y || x->size() != 32 || y->size() != 32) return bad("EC key needs 32-byte x and y");
  std::string point = "\x04" + *x + *y;  // uncompressed form (SEC 1, 2.3.3)
  std::unique_ptr<OSSL_PARAM_BLD, ParamBuildDeleter> builder(OSSL_PARAM_BLD_new());
  if (!builder ||
      OSSL_PARAM_BLD_push_utf8_string(builder.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(builder.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    return bad("EC key: out of memory");
  }
  return from_params("EC", builder.get());
}

Result<KeyPointer> okp_key(const json::object& object) {
  if (string_member(object, "crv") != "Ed25519") return bad("OKP key: only crv Ed25519 is supported");
  auto x = member(object, "x");
  if (!x || x->size() != 32) return bad("Ed25519 key needs a 32-byte x");
  EVP_PKEY* key = EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(x->data()), x->size());
  if (key == nullptr) return bad("cannot import the Ed25519 key");
  return KeyPointer(key);
}

// The key of one JWK object; nullopt (no error) for a key we skip.
Result<std::optional<Key>> key_from(const json::object& object) {
  const std::string_view use = string_member(object, "use");
  if (object.contains("use") && use != "sig") return std::optional<Key>();
  const std::string_view type = string_member(object, "kty");
  const json::value* alg_value = object.if_contains("alg");
  std::optional<Algorithm> declared;
  if (alg_value != nullptr) {
    if (!alg_value->is_string()) return bad("alg must be a string");
    declared = algorithm_from_name(alg_value->as_string());
    if (!declared || *declared == Algorithm::hs256) return std::optional<Key>();  // not ours
  }
  Key key;
  if (const json::value* kid = object.if_contains("kid")) {
    if (!kid->is_string()) return bad("kid must be a string");
    key.kid = std::string(kid->as_string());
  }
  Result<KeyPointer> imported = bad("unsupported kty");
  if (type == "RSA") {
    if (declared && *declared != Algorithm::rs256 && *declared != Algorithm::ps256) {
      return bad("alg " + std::string(algorithm_name(*declared)) + " does not fit an RSA key");
    }
    key.algorithm = declared.value_or(Algorithm::rs256);
    imported = rsa_key(object);
  } else if (type == "EC") {
    if (declared && *declared != Algorithm::es256) return bad("alg does not fit an EC key");
    key.algorithm = Algorithm::es256;
    imported = ec_key(object);
  } else if (type == "OKP") {
    if (declared && *declared != Algorithm::eddsa) return bad("alg does not fit an OKP key");
    key.algorithm = Algorithm::eddsa;
    imported = okp_key(object);
  } else {
    return std::optional<Key>();  // "oct" and others: never from a public key set
  }
  if (!imported.ok()) return imported.error();
  key.key = std::shared_ptr<EVP_PKEY>(imported.value().release(), KeyDeleter());
  return std::optional<Key>(std::move(key));
}

Result<json::value> parse_json(std::string_view text) {
  if (text.size() > jwks_bytes_max) return bad("larger than " + std::to_string(jwks_bytes_max) + " bytes");
  boost::system::error_code ec;
  json::value value = json::parse(text, ec);
  if (ec || !value.is_object()) return bad("not a JSON object");
  return value;
}

}  // namespace

std::optional<Algorithm> algorithm_from_name(std::string_view name) {
  if (name == "RS256") return Algorithm::rs256;
  if (name == "PS256") return Algorithm::ps256;
  if (name == "ES256") return Algorithm::es256;
  if (name == "EdDSA") return Algorithm::eddsa;
  if (name == "HS256") return Algorithm::hs256;
  return std::nullopt;
}

std::string_view algorithm_name(Algorithm algorithm) {
  switch (algorithm) {
    case Algorithm::rs256: return "RS256";
    case Algorithm::ps256: return "PS256";
    case Algorithm::es256: return "ES256";
    case Algorithm::eddsa: return "EdDSA";
    case Algorithm::hs256: return "HS256";
  }
  return "?";
}

Result<Key> KeySet::parse_key(std::string_view text) {
  auto value = parse_json(text);
  if (!value.ok()) return value.error();
  auto key = key_from(value.value().as_object());
  if (!key.ok()) return key.error();
  if (!key.value()) return bad("not a signature key we verify");
  return std::move(*key.value());
}

Result<KeySet> KeySet::parse(std::string_view text) {
  auto value = parse_json(text);
  if (!value.ok()) return value.error();
  const json::value* keys = value.value().as_object().if_contains("keys");
  if (keys == nullptr || !keys->is_array()) return bad("JWKS needs a \"keys\" array");
  if (keys->as_array().size() > jwks_keys_max) {
    return bad("JWKS holds more than " + std::to_string(jwks_keys_max) + " keys");
  }
  KeySet set;
  for (const json::value& entry : keys->as_array()) {
    if (!entry.is_object()) return bad("a JWKS entry is not an object");
    auto key = key_from(entry.as_object());
    if (!key.ok()) return key.error();
    if (!key.value()) continue;
    for (const Key& existing : set.keys_) {
      if (existing.kid == key.value()->kid) return bad("two keys with kid \"" + existing.kid + "\"");
    }
    set.keys_.push_back(std::move(*key.value()));
  }
  return set;
}

const Key* KeySet::find(std::string_view kid) const {
  if (kid.empty()) return keys_.size() == 1 ? &keys_.front() : nullptr;
  for (const Key& key : keys_) {
    if (key.kid == kid) return &key;
  }
  return nullptr;
}

bool verify_signature(Algorithm algorithm, EVP_PKEY* key, std::string_view signing_input,
                      std::string_view signature) {
  std::unique_ptr<EVP_MD_CTX, MdContextDeleter> context(EVP_MD_CTX_new());
  if (!context) return false;
  std::string der;  // ES256: r||s turned into the DER form OpenSSL verifies
  if (algorithm == Algorithm::es256) {
    if (signature.size() != 64) return false;
    ECDSA_SIG* sig = ECDSA_SIG_new();
    BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(signature.data()), 32, nullptr);
    BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(signature.data() + 32), 32, nullptr);
    if (sig == nullptr || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig, r, s) != 1) {
      BN_free(r);
      BN_free(s);
      ECDSA_SIG_free(sig);
      return false;
    }
    unsigned char* out = nullptr;
    const int length = i2d_ECDSA_SIG(sig, &out);
    ECDSA_SIG_free(sig);
    if (length <= 0) return false;
    der.assign(reinterpret_cast<char*>(out), static_cast<size_t>(length));
    OPENSSL_free(out);
    signature = der;
  }
  const EVP_MD* digest = algorithm == Algorithm::eddsa ? nullptr : EVP_sha256();
  EVP_PKEY_CTX* pkey_context = nullptr;
  if (EVP_DigestVerifyInit(context.get(), &pkey_context, digest, nullptr, key) != 1) return false;
  if (algorithm == Algorithm::ps256) {
    // RFC 7518 3.5: MGF1 with SHA-256 and a salt as long as the hash.
    if (EVP_PKEY_CTX_set_rsa_padding(pkey_context, RSA_PKCS1_PSS_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pkey_context, RSA_PSS_SALTLEN_DIGEST) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(pkey_context, EVP_sha256()) != 1) {
      return false;
    }
  } else if (algorithm == Algorithm::rs256) {
    if (EVP_PKEY_CTX_set_rsa_padding(pkey_context, RSA_PKCS1_PADDING) != 1) return false;
  }
  return EVP_DigestVerify(context.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                          signature.size(),
                          reinterpret_cast<const unsigned char*>(signing_input.data()),
                          signing_input.size()) == 1;
}

bool verify_hs256(std::string_view secret, std::string_view signing_input,
                  std::string_view signature) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac,
           &length) == nullptr) {
    return false;
  }
  return signature.size() == length && CRYPTO_memcmp(mac, signature.data(), length) == 0;
}

}  // namespace balanced::auth
