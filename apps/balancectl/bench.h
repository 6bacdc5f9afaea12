// balancectl bench: an HTTP/1.1 keep-alive load generator and correctness checker.
#pragma once

#include <cstdint>
#include <string>

namespace balanced::bench {

struct BenchOptions {
  // HOST:PORT, or several separated by commas: connections are spread over them, and a
  // connection whose target fails moves on to the next (as a client behind a load
  // balancer would).
  std::string target = "127.0.0.1:8080";
  size_t connections = 64;
  size_t threads = 1;
  double duration_s = 10;
  size_t accounts = 1000;
  double zipf_exponent = 0;  // 0: uniform; 1.1: a few very hot accounts
  double read_fraction = 0;  // share of requests that are GET balance
  int64_t initial_balance = 1'000'000'000;
  int64_t amount_max = 100;
  std::string account_prefix;  // default: a fresh one per run
  bool setup = true;           // create the accounts first
  bool check = true;           // afterwards, fetch every acknowledged transfer
  std::string path_override;   // send every request as GET of this path (baselines)
  bool progress = true;
  // A transfer whose answer is lost or 5xx is sent again with the same id, up to this
  // many times, as a real client must; only then is it counted unknown.
  int unknown_retries_max = 100;
  // Requests that failed (transfers still unknown after their retries, reads not
  // answered 200, requests without an answer), at most; more make the exit code 1. -1: no
  // bound (the load scripts measure; tests give one).
  int64_t failures_max = -1;
};

// Runs the benchmark, prints the report; returns the process exit code (non-zero when
// a check failed, nothing succeeded, or more requests failed than failures_max).
int run_bench(const BenchOptions& options);

}  // namespace balanced::bench
