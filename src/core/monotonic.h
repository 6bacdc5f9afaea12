// Milliseconds on the monotonic clock, for bounds and intervals measured within one
// process (breakers, refetch limits, token buckets, pacing, health pings). Never a time of
// day: that is engine::Clock's, which tests can set.
#pragma once

#include <chrono>
#include <cstdint>

namespace balanced::core {

inline int64_t monotonic_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace balanced::core
