// Hash maps keyed by std::string that look up by std::string_view without building a
// string, and always hash: with std::hash<std::string>, libstdc++ scans a map of up to 20
// entries linearly instead (a pointer chase and a compare per entry), which made small
// maps - a cache shard, a batch's accounts - slower than large ones. Header-only.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

#include <boost/unordered/unordered_flat_map.hpp>

namespace balanced::core {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const noexcept { return std::hash<std::string_view>{}(text); }
};

template <typename Value>
using StringMap = std::unordered_map<std::string, Value, StringHash, std::equal_to<>>;

// The same with open addressing (Boost's flat map): no node per entry, no division per
// lookup. A value moves when the map grows: no reference into it may outlive an insert.
template <typename Value>
using FlatStringMap = boost::unordered_flat_map<std::string, Value, StringHash, std::equal_to<>>;

}  // namespace balanced::core
