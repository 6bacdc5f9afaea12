// Account values for cache and client tests: a USD account with the given number, version
// and balance, and fixed timestamps.
#pragma once

#include <string>

#include "core/types.h"

namespace balanced::testing {

inline core::Account test_account(std::string number, int64_t version, int64_t balance) {
  return core::Account{.number = std::move(number),
                       .currency = "USD",
                       .balance = balance,
                       .overdraft_limit = 0,
                       .version = version,
                       .created_at_ms = 1,
                       .updated_at_ms = 2};
}

}  // namespace balanced::testing
