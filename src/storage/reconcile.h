// Full reconciliation of any store: every row fed to core::Verifier. What
// `balancectl verify` runs, and what tests check a store with.
#pragma once

#include "core/verify.h"
#include "storage/store.h"

namespace balanced::storage {

Result<core::VerifyReport> reconcile(Store& store);

}  // namespace balanced::storage
