// The journal's record format: the effects of one committed batch, in a compact binary
// form (little-endian int64s, length-prefixed strings). Written by the committer, read
// back by recovery; decode() rejects anything truncated or malformed.
#pragma once

#include <string>
#include <string_view>

#include "core/codes.h"
#include "core/ledger.h"

namespace balanced::storage {

// Created and updated accounts, transactions (with sequences) and audit records (with
// log ids) of a batch; outcomes are not journaled.
std::string encode_journal_record(const core::BatchEffects& effects);
Result<core::BatchEffects> decode_journal_record(std::string_view bytes);

}  // namespace balanced::storage
