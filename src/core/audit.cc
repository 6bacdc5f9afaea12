#include "core/audit.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <cassert>
#include <memory>

namespace balanced::core {

namespace {

// OpenSSL 3's SHA256() looks the algorithm up in its provider tables on every call (a
// lock and a hash-table lookup: about as long as hashing a short record, and the
// materializer hashes every audit record). Fetched once; one context per thread.
const EVP_MD* sha256_algorithm() {
  static EVP_MD* const algorithm = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return algorithm;
}

}  // namespace

std::string sha256(std::string_view data) {
  thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(
      EVP_MD_CTX_new(), EVP_MD_CTX_free);
  std::string digest(hash_bytes, '\0');
  auto* out = reinterpret_cast<unsigned char*>(digest.data());
  unsigned int size = 0;
  const EVP_MD* algorithm = sha256_algorithm();
  if (algorithm == nullptr || context == nullptr ||
      EVP_DigestInit_ex(context.get(), algorithm, nullptr) != 1 ||
      EVP_DigestUpdate(context.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(context.get(), out, &size) != 1 || size != hash_bytes) {
    SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out);  // the slow way
  }
  return digest;
}

std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex(bytes.size() * 2, '\0');
  char* out = hex.data();
  for (const char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    *out++ = kDigits[byte >> 4];
    *out++ = kDigits[byte & 0x0f];
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
