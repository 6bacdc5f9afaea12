#include "core/audit.h"

#include <openssl/sha.h>

#include <cassert>

namespace balanced::core {

std::string sha256(std::string_view data) {
  std::string digest(hash_bytes, '\0');
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(),
         reinterpret_cast<unsigned char*>(digest.data()));
  return digest;
}

std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (unsigned char byte : bytes) {
    hex.push_back(kDigits[byte >> 4]);
    hex.push_back(kDigits[byte & 0x0f]);
  }
  return hex;
}

std::string genesis_hash() { return std::string(hash_bytes, '\0'); }

std::string audit_hash(const AuditRecord& record) {
  std::string canonical;
  canonical.reserve(record.prev_hash.size() + record.operation_type.size() +
                    record.operator_name.size() + record.detail.size() + 32);
  canonical.append(record.prev_hash);
  canonical.append(record.operation_type).push_back('\n');
  canonical.append(record.operator_name).push_back('\n');
  canonical.append(std::to_string(record.operation_time_ms)).push_back('\n');
  canonical.append(record.detail);
  return sha256(canonical);
}

const std::string& chain_audit_record(AuditRecord& record, std::string_view prev_hash) {
  assert(prev_hash.size() == hash_bytes);
  record.prev_hash = std::string(prev_hash);
  record.hash = audit_hash(record);
  return record.hash;
}

}  // namespace balanced::core
