// Verified tokens, remembered so that a repeat caller costs a hash and a lookup instead
// of a signature check. Keyed by SHA-256 of the token (the token itself is not kept);
// an entry is good until its "exp" (plus leeway) and only for the key set generation it
// was verified under, so a key removed from the JWKS stops its tokens at once.
// Bounded: each shard holds at most entries_max / shards entries and drops the oldest.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "auth/jwt.h"

namespace balanced::auth {

class TokenCache {
 public:
  static constexpr size_t shards = 16;
  explicit TokenCache(size_t entries_max = 100'000) : shard_entries_max_(std::max<size_t>(1, entries_max / shards)) {}

  std::shared_ptr<const Principal> find(std::string_view token, uint64_t generation,
                                        int64_t now_s, int64_t leeway_s);
  void put(std::string_view token, uint64_t generation, std::shared_ptr<const Principal> principal);

 private:
  struct Entry {
    std::shared_ptr<const Principal> principal;
    uint64_t generation = 0;
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, Entry> entries;
    std::deque<std::string> order;  // insertion order, for eviction
  };
  static std::string digest(std::string_view token);
  Shard& shard_of(const std::string& key) {
    return shards_[static_cast<unsigned char>(key[0]) % shards];
  }
  const size_t shard_entries_max_;
  std::array<Shard, shards> shards_;
};

}  // namespace balanced::auth
