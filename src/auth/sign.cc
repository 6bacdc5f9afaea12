#include "auth/sign.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <boost/json.hpp>
#include <memory>

#include "auth/base64url.h"

namespace balanced::auth {
namespace {

Error failed(std::string what) { return Error{Code::internal, std::move(what)}; }

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct MdContextDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

std::string bn_bytes(const BIGNUM* n, int width = 0) {
  const int size = width > 0 ? width : BN_num_bytes(n);
  std::string out(static_cast<size_t>(size), '\0');
  BN_bn2binpad(n, reinterpret_cast<unsigned char*>(out.data()), size);
  return out;
}

}  // namespace

Result<KeyPointer> generate_key(Algorithm algorithm) {
  EVP_PKEY* key = nullptr;
  switch (algorithm) {
    case Algorithm::rs256:
    case Algorithm::ps256: key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}); break;
    case Algorithm::es256: key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"); break;
    case Algorithm::eddsa: key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"); break;
    case Algorithm::hs256: return Error{Code::invalid_request, "HS256 takes a secret, not a key pair"};
  }
  if (key == nullptr) return failed("key generation failed");
  return KeyPointer(key);
}

Result<std::string> private_key_pem(EVP_PKEY* key) {
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return failed("cannot write the private key");
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

Result<KeyPointer> read_private_key_pem(std::string_view pem) {
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* key = bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  if (key == nullptr) return Error{Code::invalid_request, "not a PEM private key"};
  return KeyPointer(key);
}

Result<Algorithm> default_algorithm(EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "RSA")) return Algorithm::rs256;
  if (EVP_PKEY_is_a(key, "EC")) return Algorithm::es256;
  if (EVP_PKEY_is_a(key, "ED25519")) return Algorithm::eddsa;
  return Error{Code::invalid_request, "unsupported key type (RSA, EC P-256 or Ed25519)"};
}

Result<std::string> public_jwk(EVP_PKEY* key, Algorithm algorithm, std::string_view kid) {
  boost::json::object jwk;
  if (EVP_PKEY_is_a(key, "RSA")) {
    BIGNUM* n = nullptr;
    BIGNUM* e = nullptr;
    if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
        EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e) != 1) {
      BN_free(n);
      return failed("cannot read the RSA key");
    }
    jwk["kty"] = "RSA";
    jwk["n"] = base64url_encode(bn_bytes(n));
    jwk["e"] = base64url_encode(bn_bytes(e));
    BN_free(n);
    BN_free(e);
  } else if (EVP_PKEY_is_a(key, "EC")) {
    BIGNUM* x = nullptr;
    BIGNUM* y = nullptr;
    if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1 ||
        EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1) {
      BN_free(x);
      return failed("cannot read the EC key");
    }
    jwk["kty"] = "EC";
    jwk["crv"] = "P-256";
    jwk["x"] = base64url_encode(bn_bytes(x, 32));
    jwk["y"] = base64url_encode(bn_bytes(y, 32));
    BN_free(x);
    BN_free(y);
  } else if (EVP_PKEY_is_a(key, "ED25519")) {
    unsigned char raw[32];
    size_t length = sizeof raw;
    if (EVP_PKEY_get_raw_public_key(key, raw, &length) != 1) return failed("cannot read the Ed25519 key");
    jwk["kty"] = "OKP";
    jwk["crv"] = "Ed25519";
    jwk["x"] = base64url_encode(std::string_view(reinterpret_cast<char*>(raw), length));
  } else {
    return Error{Code::invalid_request, "unsupported key type"};
  }
  jwk["kid"] = kid;
  jwk["alg"] = algorithm_name(algorithm);
  jwk["use"] = "sig";
  return boost::json::serialize(jwk);
}

Result<std::string> sign_jwt(EVP_PKEY* key, Algorithm algorithm, std::string_view kid,
                             std::string_view payload_json) {
  boost::json::object header{{"alg", algorithm_name(algorithm)}, {"typ", "at+jwt"}};
  if (!kid.empty()) header["kid"] = kid;
  const std::string input =
      base64url_encode(boost::json::serialize(header)) + "." + base64url_encode(payload_json);
  std::unique_ptr<EVP_MD_CTX, MdContextDeleter> context(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pkey_context = nullptr;
  const EVP_MD* digest = algorithm == Algorithm::eddsa ? nullptr : EVP_sha256();
  if (!context || EVP_DigestSignInit(context.get(), &pkey_context, digest, nullptr, key) != 1) {
    return failed("cannot sign with this key");
  }
  if (algorithm == Algorithm::ps256 &&
      (EVP_PKEY_CTX_set_rsa_padding(pkey_context, RSA_PKCS1_PSS_PADDING) != 1 ||
       EVP_PKEY_CTX_set_rsa_pss_saltlen(pkey_context, RSA_PSS_SALTLEN_DIGEST) != 1)) {
    return failed("cannot set PSS padding");
  }
  size_t length = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  if (EVP_DigestSign(context.get(), nullptr, &length, data, input.size()) != 1) return failed("sign failed");
  std::string signature(length, '\0');
  if (EVP_DigestSign(context.get(), reinterpret_cast<unsigned char*>(signature.data()), &length, data,
                     input.size()) != 1) {
    return failed("sign failed");
  }
  signature.resize(length);
  if (algorithm == Algorithm::es256) {  // DER -> r||s (RFC 7518 3.4)
    const auto* der = reinterpret_cast<const unsigned char*>(signature.data());
    ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &der, static_cast<long>(signature.size()));
    if (sig == nullptr) return failed("bad ECDSA signature");
    signature = bn_bytes(ECDSA_SIG_get0_r(sig), 32) + bn_bytes(ECDSA_SIG_get0_s(sig), 32);
    ECDSA_SIG_free(sig);
  }
  return input + "." + base64url_encode(signature);
}

}  // namespace balanced::auth
