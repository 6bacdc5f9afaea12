#include "auth/token_cache.h"

#include <openssl/sha.h>

namespace balanced::auth {

std::string TokenCache::digest(std::string_view token) {
  std::string out(SHA256_DIGEST_LENGTH, '\0');
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(),
         reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

std::shared_ptr<const Principal> TokenCache::find(std::string_view token, uint64_t generation,
                                                  int64_t now_s, int64_t leeway_s) {
  const std::string key = digest(token);
  Shard& shard = shard_of(key);
  std::lock_guard lock(shard.mutex);
  auto found = shard.entries.find(key);
  if (found == shard.entries.end()) return nullptr;
  const Entry& entry = found->second;
  if (entry.generation != generation || now_s - leeway_s >= entry.principal->expires_s) {
    return nullptr;  // left for eviction; a fresh verification replaces it
  }
  return entry.principal;
}

void TokenCache::put(std::string_view token, uint64_t generation,
                     std::shared_ptr<const Principal> principal) {
  std::string key = digest(token);
  Shard& shard = shard_of(key);
  std::lock_guard lock(shard.mutex);
  auto [it, inserted] = shard.entries.insert_or_assign(key, Entry{std::move(principal), generation});
  if (!inserted) return;
  shard.order.push_back(std::move(key));
  while (shard.order.size() > shard_entries_max_) {
    shard.entries.erase(shard.order.front());
    shard.order.pop_front();
  }
}

}  // namespace balanced::auth
