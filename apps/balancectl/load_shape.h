// What the load generators share: how accounts are picked and how latencies are summed up.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace balanced::bench {

// Picks account indexes: uniform, or Zipf(s) over ranks 0..n-1 (rank 0 the hottest).
class AccountPicker {
 public:
  AccountPicker(size_t count, double exponent) : count_(count) {
    if (exponent <= 0) return;
    cdf_.reserve(count);
    double sum = 0;
    for (size_t rank = 1; rank <= count; ++rank) {
      sum += 1.0 / std::pow(static_cast<double>(rank), exponent);
      cdf_.push_back(sum);
    }
    for (double& value : cdf_) value /= sum;
  }
  size_t pick(std::mt19937_64& random) const {
    if (cdf_.empty()) return std::uniform_int_distribution<size_t>(0, count_ - 1)(random);
    const double u = std::uniform_real_distribution<double>(0, 1)(random);
    return std::min<size_t>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin(),
                            count_ - 1);
  }

 private:
  size_t count_;
  std::vector<double> cdf_;
};

// The p-quantile (0..1) of sorted microsecond samples, in milliseconds.
inline double percentile(const std::vector<uint32_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t index = std::min(sorted.size() - 1, static_cast<size_t>(p * sorted.size()));
  return sorted[index] / 1000.0;
}

}  // namespace balanced::bench
