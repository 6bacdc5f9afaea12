// Money is int64_t minor units (cents for USD). Every sum is checked: an overflow is an
// error value, never a wrapped number.
#pragma once

#include <cstdint>
#include <optional>

namespace balanced::core {

inline std::optional<int64_t> checked_add(int64_t a, int64_t b) {
  int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) return std::nullopt;
  return sum;
}

inline std::optional<int64_t> checked_sub(int64_t a, int64_t b) {
  int64_t difference = 0;
  if (__builtin_sub_overflow(a, b, &difference)) return std::nullopt;
  return difference;
}

}  // namespace balanced::core
