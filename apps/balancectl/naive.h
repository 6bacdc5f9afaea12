// balancectl naive: the seed's per-request design, driven straight at MySQL, as the
// baseline for the MySQL benchmark. Each transfer is its own database transaction:
// SELECT ... FOR UPDATE both accounts, two UPDATEs, INSERT transaction, INSERT audit
// record, COMMIT - one client thread and connection per concurrent request. No HTTP in
// between, so the baseline is measured at its best.
#pragma once

#include <cstdint>
#include <string>

namespace balanced::bench {

struct NaiveOptions {
  std::string db;  // mysql://... (a database migrated with `balancectl migrate`)
  std::string password_file;
  size_t connections = 64;
  double duration_s = 10;
  size_t accounts = 1000;
  double zipf_exponent = 0;
  int64_t initial_balance = 1'000'000'000;
  int64_t amount_max = 100;
};

int run_naive(const NaiveOptions& options);

}  // namespace balanced::bench
