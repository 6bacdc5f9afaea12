#include "flags/token_checks.h"

#include <fstream>
#include <sstream>

namespace balanced::flags {

void add_token_flags(CLI::App& app, TokenFlags& flags, const std::string& env_prefix) {
  app.add_option("--jwks", flags.jwks, "verification keys: a JWKS file, or an https:// URL (http:// to loopback only)")
      ->envname(env_prefix + "JWKS");
  app.add_option("--jwks-ca-file", flags.jwks_ca_file, "extra CA for an https:// JWKS")->envname(env_prefix + "JWKS_CA_FILE");
  app.add_option("--jwks-refresh-s", flags.jwks_refresh_s, "refetch a JWKS URL this often")
      ->envname(env_prefix + "JWKS_REFRESH_S")
      ->check(CLI::Range(int64_t{1}, int64_t{86'400}));
  app.add_option("--jwks-min-refetch-s", flags.jwks_min_refetch_s, "unknown-kid refetches at most this often")
      ->envname(env_prefix + "JWKS_MIN_REFETCH_S")
      ->check(CLI::Range(int64_t{0}, int64_t{3'600}));
  app.add_option("--jwt-issuer", flags.verifier.issuer, "required iss")->envname(env_prefix + "JWT_ISSUER");
  app.add_option("--jwt-audience", flags.verifier.audience, "required aud (string, or in the array)")
      ->envname(env_prefix + "JWT_AUDIENCE");
  app.add_option("--jwt-leeway-s", flags.verifier.leeway_s, "clock leeway for exp and nbf")
      ->envname(env_prefix + "JWT_LEEWAY_S")
      ->check(CLI::Range(int64_t{0}, int64_t{600}));
  app.add_option("--jwt-hs256-secret-file", flags.hs256_secret_file, "enables HS256 with this secret (>= 32 bytes)")
      ->envname(env_prefix + "JWT_HS256_SECRET_FILE");
}

Result<TokenChecks> open_token_checks(const TokenFlags& flags, observe::Registry& registry,
                                      const std::string& metrics_prefix) {
  if (flags.jwks.empty() || flags.verifier.issuer.empty() || flags.verifier.audience.empty()) {
    return Error{Code::invalid_request, "token checks need --jwks, --jwt-issuer and --jwt-audience"};
  }
  auth::VerifierOptions verifier = flags.verifier;
  if (!flags.hs256_secret_file.empty()) {
    std::ifstream in(flags.hs256_secret_file, std::ios::binary);
    if (!in) return Error{Code::invalid_request, "--jwt-hs256-secret-file: cannot read " + flags.hs256_secret_file};
    std::ostringstream text;
    text << in.rdbuf();
    verifier.hs256_secret = text.str();
    while (!verifier.hs256_secret.empty() &&
           (verifier.hs256_secret.back() == '\n' || verifier.hs256_secret.back() == '\r')) {
      verifier.hs256_secret.pop_back();
    }
    if (verifier.hs256_secret.size() < 32) {
      return Error{Code::invalid_request, "--jwt-hs256-secret-file: use at least 32 bytes"};
    }
  }
  TokenChecks checks;
  checks.key_stats = std::make_unique<auth::KeySourceStats>(registry, metrics_prefix);
  const bool is_url = flags.jwks.starts_with("https://") || flags.jwks.starts_with("http://");
  std::unique_ptr<auth::JwksLoader> loader;
  if (is_url) {
    auto url = auth::url_loader(flags.jwks, flags.jwks_ca_file, 5000);
    if (!url.ok()) return url.error();
    loader = std::move(url.value());
  } else {
    loader = auth::file_loader(flags.jwks);
  }
  auto keys = auth::KeySource::start(std::move(loader),
                                     auth::KeySourceOptions{.refresh_ms = flags.jwks_refresh_s * 1000,
                                                            .min_refetch_ms = flags.jwks_min_refetch_s * 1000,
                                                            .is_url = is_url},
                                     checks.key_stats.get());
  if (!keys.ok()) return Error{Code::invalid_request, "--jwks: " + keys.error().detail};
  checks.keys = std::move(keys.value());
  checks.gate_stats = std::make_unique<auth::GateStats>(registry, metrics_prefix);
  checks.gate = std::make_unique<auth::Gate>(verifier, *checks.keys, checks.gate_stats.get());
  return checks;
}

}  // namespace balanced::flags
