// The token-check flags both binaries take (--jwks, --jwt-issuer, ...) and what they
// build: the key source and the gate. One definition, so balanced's own checks
// (DESIGN.md section 9) and the gateway's are the same module with the same rules.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "auth/gate.h"
#include "auth/key_source.h"

namespace balanced::flags {

struct TokenFlags {
  std::string jwks;
  std::string jwks_ca_file;
  int64_t jwks_refresh_s = 300;
  int64_t jwks_min_refetch_s = 5;
  auth::VerifierOptions verifier;
  std::string hs256_secret_file;
  bool given() const { return !jwks.empty(); }
  // An issuer or audience without keys is a mistake, not "no checks".
  bool partly_given() const { return !given() && (!verifier.issuer.empty() || !verifier.audience.empty()); }
};

// Adds the flags, with environment variables `<env_prefix>JWKS` and so on.
void add_token_flags(CLI::App& app, TokenFlags& flags, const std::string& env_prefix);

struct TokenChecks {
  std::unique_ptr<auth::KeySourceStats> key_stats;
  std::unique_ptr<auth::KeySource> keys;
  std::unique_ptr<auth::GateStats> gate_stats;
  std::unique_ptr<auth::Gate> gate;
};

// Loads the keys (an error when none load) and builds the gate; metric names start
// with `metrics_prefix`.
Result<TokenChecks> open_token_checks(const TokenFlags& flags, observe::Registry& registry,
                                      const std::string& metrics_prefix);

}  // namespace balanced::flags
