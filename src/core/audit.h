// The audit log's hash chain: every record's hash is SHA-256(prev_hash || its canonical
// form), so changing, dropping or reordering a record breaks every hash after it.
#pragma once

#include <string>
#include <string_view>

#include "core/types.h"

namespace balanced::core {

inline constexpr size_t hash_bytes = 32;

// 32 raw bytes.
std::string sha256(std::string_view data);
std::string to_hex(std::string_view bytes);
// The hash of "no record before": 32 zero bytes.
std::string genesis_hash();
// The hash a record must carry given its fields and prev_hash.
std::string audit_hash(const AuditRecord& record);
// Sets record.prev_hash and record.hash; returns the new chain head.
const std::string& chain_audit_record(AuditRecord& record, std::string_view prev_hash);

}  // namespace balanced::core
