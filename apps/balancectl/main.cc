// balancectl: the operator tool.
//   migrate  apply pending schema migrations
//   verify   full reconciliation of a ledger; exits 1 with a report when anything is off
//   bench    load generator and correctness checker against a running service
//   naive    the seed's one-transaction-per-transfer design straight on MySQL (a baseline)
#include <CLI/CLI.hpp>
#include <cstdio>

#include "bench.h"
#include "keys.h"
#include "naive.h"
#include "core/verify.h"
#include "storage/open.h"
#include "storage/sqlite/backup.h"
#include "storage/reconcile.h"

using namespace balanced;

namespace {

int migrate(const std::string& db, const std::string& password_file) {
  auto versions = storage::migrate_store(db, password_file);
  if (!versions.ok()) {
    std::fprintf(stderr, "migrate: %s\n", versions.error().detail.c_str());
    return versions.error().code == Code::invalid_request ? 2 : 1;
  }
  std::printf("schema version %d -> %d\n", versions.value().first, versions.value().second);
  return 0;
}

int verify(const std::string& db, const std::string& password_file) {
  storage::StoreSettings settings{.url = db, .password_file = password_file};
  settings.sqlite.migrate = false;
  auto store = storage::open_store(settings);
  if (!store.ok() && store.error().detail.find("in use by another process") != std::string::npos) {
    // balanced is running: check what it has materialized so far, read-only.
    std::printf("note: balanced holds the ledger; verifying its materialized tables read-only\n");
    settings.sqlite.read_only = true;
    store = storage::open_store(settings);
  }
  if (!store.ok()) {
    std::fprintf(stderr, "verify: %s\n", store.error().detail.c_str());
    return 2;
  }
  if (store.value().shared) {
    // Records not chained yet are checked once the sealing job has chained them.
    auto unsealed = store.value().store->unsealed_audit_records();
    if (!unsealed.ok()) {
      std::fprintf(stderr, "verify: %s\n", unsealed.error().detail.c_str());
      return 2;
    }
    std::printf("audit records awaiting the chain: %lld\n", static_cast<long long>(unsealed.value()));
  }
  auto reconciled = storage::reconcile(*store.value().store);
  if (!reconciled.ok()) {
    std::fprintf(stderr, "verify: %s\n", reconciled.error().detail.c_str());
    return 2;
  }
  const core::VerifyReport& report = reconciled.value();
  std::printf("accounts=%lld transactions=%lld audit_records=%lld problems=%lld\n",
              static_cast<long long>(report.accounts), static_cast<long long>(report.transactions),
              static_cast<long long>(report.audit_records),
              static_cast<long long>(report.problem_count));
  for (const auto& problem : report.problems) std::printf("  %s\n", problem.c_str());
  std::printf("%s\n", report.clean() ? "verify: clean" : "verify: FAILED");
  return report.clean() ? 0 : 1;
}

constexpr std::string_view kSqlite = "sqlite:";

int backup(const std::string& db, const std::string& out) {
  if (!db.starts_with(kSqlite)) {
    std::fprintf(stderr, "backup: --db sqlite:PATH (for MySQL, see docs/OPERATIONS.md: RDS snapshots, mariadb-dump)\n");
    return 2;
  }
  auto report = storage::backup_sqlite(db.substr(kSqlite.size()), out);
  if (!report.ok()) {
    std::fprintf(stderr, "backup: %s\n", report.error().detail.c_str());
    return report.error().code == Code::invalid_request ? 2 : 1;
  }
  std::printf("backup written to %s\n", out.c_str());
  return 0;
}

int restore(const std::string& in, const std::string& db) {
  if (!db.starts_with(kSqlite)) {
    std::fprintf(stderr, "restore: --db sqlite:PATH\n");
    return 2;
  }
  if (auto status = storage::restore_sqlite(in, db.substr(kSqlite.size())); !status.ok()) {
    std::fprintf(stderr, "restore: %s\n", status.detail().c_str());
    return status.code() == Code::invalid_request ? 2 : 1;
  }
  std::printf("restored %s into %s\n", in.c_str(), db.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"balancectl: operate a balanced ledger"};
  app.require_subcommand(1);

  std::string db = "sqlite:./data/balanced.db";
  std::string password_file;
  auto* migrate_command = app.add_subcommand("migrate", "apply pending schema migrations");
  auto* verify_command = app.add_subcommand(
      "verify", "check conservation, postings, balance-after chains, holds, refunds, report totals, event ids and the audit chain");
  for (auto* command : {migrate_command, verify_command}) {
    command->add_option("--db", db, "sqlite:PATH or mysql://USER:PASSWORD@HOST:PORT/DB")
        ->envname("BALANCED_DB");
    command->add_option("--db-password-file", password_file, "file holding the MySQL password")
        ->envname("BALANCED_DB_PASSWORD_FILE");
  }

  bench::BenchOptions bench_options;
  bool no_setup = false;
  bool no_check = false;
  bool quiet = false;
  auto* bench_command = app.add_subcommand("bench", "drive load and check every acknowledged transfer");
  bench_command->add_option("--target", bench_options.target, "HOST:PORT of balanced");
  bench_command->add_option("--connections", bench_options.connections)->check(CLI::Range(1, 10000));
  bench_command->add_option("--threads", bench_options.threads, "client threads")
      ->check(CLI::Range(1, 64));
  bench_command->add_option("--duration", bench_options.duration_s, "seconds")
      ->check(CLI::Range(0.1, 3600.0));
  bench_command->add_option("--accounts", bench_options.accounts)->check(CLI::Range(2, 10'000'000));
  bench_command->add_option("--zipf", bench_options.zipf_exponent, "skew; 0 is uniform")
      ->check(CLI::Range(0.0, 5.0));
  bench_command->add_option("--read-fraction", bench_options.read_fraction,
                            "share of GET balance requests")
      ->check(CLI::Range(0.0, 1.0));
  bench_command->add_option("--initial-balance", bench_options.initial_balance);
  bench_command->add_option("--amount-max", bench_options.amount_max)->check(CLI::Range(1, 1'000'000'000));
  bench_command->add_option("--account-prefix", bench_options.account_prefix,
                            "reuse accounts of an earlier run");
  bench_command->add_option("--path", bench_options.path_override,
                            "GET this path only (for baselines such as nginx)");
  bench_command->add_option("--failures-max", bench_options.failures_max,
                            "exit 1 when more requests than this failed (unknown transfers, failed reads, "
                            "requests without an answer); default: no bound")
      ->check(CLI::Range(int64_t{-1}, int64_t{1} << 40));
  bench_command->add_flag("--no-setup", no_setup, "the accounts exist already");
  bench_command->add_flag("--no-check", no_check, "skip fetching acknowledged transfers");
  bench_command->add_flag("--quiet", quiet, "no progress line");
  std::string verify_db;
  bench_command->add_option("--verify-db", verify_db,
                            "afterwards, run `verify` on this ledger (sqlite:PATH or mysql://...)");

  bench::NaiveOptions naive_options;
  auto* naive_command = app.add_subcommand(
      "naive", "baseline: one MySQL transaction per transfer, one connection per client");
  naive_command->add_option("--db", naive_options.db, "mysql://USER:PASSWORD@HOST:PORT/DB (migrated)")
      ->required();
  naive_command->add_option("--db-password-file", naive_options.password_file);
  naive_command->add_option("--connections", naive_options.connections)->check(CLI::Range(1, 1000));
  naive_command->add_option("--duration", naive_options.duration_s, "seconds")
      ->check(CLI::Range(0.1, 3600.0));
  naive_command->add_option("--accounts", naive_options.accounts)->check(CLI::Range(2, 10'000'000));
  naive_command->add_option("--zipf", naive_options.zipf_exponent)->check(CLI::Range(0.0, 5.0));

  std::string backup_file;
  auto* backup_command = app.add_subcommand(
      "backup", "online, consistent copy of a SQLite ledger (commit log included) as one file");
  backup_command->add_option("--db", db, "sqlite:PATH of the ledger (balanced may be serving it)")
      ->envname("BALANCED_DB");
  backup_command->add_option("--out", backup_file, "the backup file to write (must not exist)")->required();
  auto* restore_command = app.add_subcommand("restore", "put a backup in place as a new SQLite ledger");
  restore_command->add_option("--in", backup_file, "a file written by balancectl backup")->required();
  restore_command->add_option("--db", db, "sqlite:PATH to create (must not exist)")->required();

  keys::KeygenOptions keygen_options;
  auto* keygen_command = app.add_subcommand("keygen", "make a signing key and the JWKS with its public half");
  keygen_command->add_option("--alg", keygen_options.algorithm, "RS256, PS256, ES256 or EdDSA");
  keygen_command->add_option("--kid", keygen_options.kid, "key id")->required();
  keygen_command->add_option("--key-out", keygen_options.key_out, "private key file (PEM, mode 0600)")->required();
  keygen_command->add_option("--jwks-out", keygen_options.jwks_out,
                             "JWKS file; an existing one keeps its other keys")
      ->required();
  keys::TokenOptions token_options;
  auto* token_command = app.add_subcommand("token", "sign a JWT access token with a keygen key");
  token_command->add_option("--key", token_options.key, "private key file (PEM)")->required();
  token_command->add_option("--kid", token_options.kid, "key id, as in the JWKS");
  token_command->add_option("--alg", token_options.algorithm, "default: the key's (RSA: RS256)");
  token_command->add_option("--sub", token_options.subject, "the principal");
  token_command->add_option("--scope", token_options.scope, "space-separated scopes");
  token_command->add_option("--accounts", token_options.accounts, "comma-separated account numbers");
  token_command->add_option("--ttl", token_options.ttl_s, "seconds until exp")->check(CLI::Range(1, 366 * 86400));
  token_command->add_option("--iss", token_options.issuer, "issuer");
  token_command->add_option("--aud", token_options.audience, "audience");
  token_command->add_option("--count", token_options.count,
                            "print that many tokens, subjects <sub-prefix>N, each for account <account-prefix>N")
      ->check(CLI::Range(1, 10'000'000));
  token_command->add_option("--sub-prefix", token_options.subject_prefix);
  token_command->add_option("--account-prefix", token_options.account_prefix);

  CLI11_PARSE(app, argc, argv);
  if (backup_command->parsed()) return backup(db, backup_file);
  if (restore_command->parsed()) return restore(backup_file, db);
  if (keygen_command->parsed()) return keys::run_keygen(keygen_options);
  if (token_command->parsed()) return keys::run_token(token_options);
  if (naive_command->parsed()) return bench::run_naive(naive_options);
  if (migrate_command->parsed()) return migrate(db, password_file);
  if (verify_command->parsed()) return verify(db, password_file);
  bench_options.setup = !no_setup;
  bench_options.check = !no_check;
  bench_options.progress = !quiet;
  const int bench_code = bench::run_bench(bench_options);
  if (verify_db.empty()) return bench_code;
  const int verify_code = verify(verify_db, password_file);
  return bench_code != 0 ? bench_code : verify_code;
}
