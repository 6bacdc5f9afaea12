#include "keys.h"

#include <sys/stat.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "auth/sign.h"

namespace balanced::keys {
namespace json = boost::json;
namespace {

int fail(const std::string& message) {
  std::fprintf(stderr, "%s\n", message.c_str());
  return 2;
}

bool read_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream text;
  text << in.rdbuf();
  out = text.str();
  return true;
}

// Writes through a temporary file and a rename, so a watcher never reads half a file.
bool write_file(const std::string& path, const std::string& text, mode_t mode) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) return false;
    out << text;
    if (!out) return false;
  }
  ::chmod(temporary.c_str(), mode);
  std::error_code ec;
  std::filesystem::rename(temporary, path, ec);
  return !ec;
}

}  // namespace

int run_keygen(const KeygenOptions& options) {
  const auto algorithm = auth::algorithm_from_name(options.algorithm);
  if (!algorithm || *algorithm == auth::Algorithm::hs256) return fail("keygen: --alg RS256, PS256, ES256 or EdDSA");
  if (options.kid.empty()) return fail("keygen: --kid is required");
  auto key = auth::generate_key(*algorithm);
  if (!key.ok()) return fail("keygen: " + key.error().detail);
  auto pem = auth::private_key_pem(key.value().get());
  auto jwk = auth::public_jwk(key.value().get(), *algorithm, options.kid);
  if (!pem.ok() || !jwk.ok()) return fail("keygen: cannot export the key");
  json::array keys;
  std::string existing;
  if (read_file(options.jwks_out, existing)) {
    boost::system::error_code ec;
    json::value parsed = json::parse(existing, ec);
    if (ec || !parsed.is_object() || !parsed.as_object().contains("keys") || !parsed.at("keys").is_array()) {
      return fail("keygen: " + options.jwks_out + " is not a JWKS");
    }
    for (const json::value& entry : parsed.at("keys").as_array()) {
      const json::value* kid = entry.is_object() ? entry.as_object().if_contains("kid") : nullptr;
      if (kid == nullptr || !kid->is_string() || kid->as_string() != options.kid) keys.push_back(entry);
    }
  }
  keys.push_back(json::parse(jwk.value()));
  if (!write_file(options.key_out, pem.value(), 0600)) return fail("keygen: cannot write " + options.key_out);
  if (!write_file(options.jwks_out, json::serialize(json::object{{"keys", keys}}) + "\n", 0644)) {
    return fail("keygen: cannot write " + options.jwks_out);
  }
  std::printf("wrote %s (private, %s) and %s (%zu keys)\n", options.key_out.c_str(), options.algorithm.c_str(),
              options.jwks_out.c_str(), keys.size());
  return 0;
}

int run_token(const TokenOptions& options) {
  std::string pem;
  if (!read_file(options.key, pem)) return fail("token: cannot read " + options.key);
  auto key = auth::read_private_key_pem(pem);
  if (!key.ok()) return fail("token: " + key.error().detail);
  auth::Algorithm algorithm{};
  if (options.algorithm.empty()) {
    auto guessed = auth::default_algorithm(key.value().get());
    if (!guessed.ok()) return fail("token: " + guessed.error().detail);
    algorithm = guessed.value();
  } else {
    const auto named = auth::algorithm_from_name(options.algorithm);
    if (!named || *named == auth::Algorithm::hs256) return fail("token: --alg RS256, PS256, ES256 or EdDSA");
    algorithm = *named;
  }
  if (options.count <= 0 && options.subject.empty()) return fail("token: --sub (or --count) is required");
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  auto mint = [&](const std::string& subject, const json::array& accounts) -> int {
    json::object claims{{"sub", subject}, {"iat", now}, {"exp", now + options.ttl_s}};
    if (!options.issuer.empty()) claims["iss"] = options.issuer;
    if (!options.audience.empty()) claims["aud"] = options.audience;
    if (!options.scope.empty()) claims["scope"] = options.scope;
    claims["accounts"] = accounts;
    auto token = auth::sign_jwt(key.value().get(), algorithm, options.kid, json::serialize(claims));
    if (!token.ok()) return fail("token: " + token.error().detail);
    std::printf("%s\n", token.value().c_str());
    return 0;
  };
  if (options.count > 0) {
    for (int64_t i = 0; i < options.count; ++i) {
      const int code = mint(options.subject_prefix + std::to_string(i),
                            json::array{json::value(options.account_prefix + std::to_string(i))});
      if (code != 0) return code;
    }
    return 0;
  }
  json::array accounts;
  std::stringstream list(options.accounts);
  std::string account;
  while (std::getline(list, account, ',')) {
    if (!account.empty()) accounts.push_back(json::value(account));
  }
  return mint(options.subject, accounts);
}

}  // namespace balanced::keys
