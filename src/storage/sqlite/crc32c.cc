#include "storage/sqlite/crc32c.h"

#include <array>
#include <cstring>

namespace balanced::storage {
namespace {

// Reflected, polynomial 0x1EDC6F41 (0x82F63B78 reversed).
constexpr std::array<uint32_t, 256> crc_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t crc = i;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    table[i] = crc;
  }
  return table;
}
constexpr auto kCrcTable = crc_table();

uint32_t table_update(uint32_t crc, const unsigned char* p, size_t n) {
  for (size_t i = 0; i < n; ++i) crc = kCrcTable[(crc ^ p[i]) & 0xffu] ^ (crc >> 8);
  return crc;
}

#if defined(__x86_64__)
// Eight bytes per instruction; the instruction computes exactly this CRC.
__attribute__((target("sse4.2"))) uint32_t hardware_update(uint32_t crc, const unsigned char* p, size_t n) {
  uint64_t wide = crc;
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);  // little-endian, as the table reads bytes
    wide = __builtin_ia32_crc32di(wide, word);
  }
  auto narrow = static_cast<uint32_t>(wide);
  for (; n > 0; ++p, --n) narrow = __builtin_ia32_crc32qi(narrow, *p);
  return narrow;
}

bool detect_hardware() { return __builtin_cpu_supports("sse4.2"); }
#else
uint32_t hardware_update(uint32_t crc, const unsigned char* p, size_t n) { return table_update(crc, p, n); }
bool detect_hardware() { return false; }
#endif

const unsigned char* bytes_of(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

}  // namespace

uint32_t crc32c(uint32_t crc, std::string_view bytes) {
  if (!crc32c_hardware()) return crc32c_portable(crc, bytes);
  return ~hardware_update(~crc, bytes_of(bytes), bytes.size());
}

uint32_t crc32c_portable(uint32_t crc, std::string_view bytes) {
  return ~table_update(~crc, bytes_of(bytes), bytes.size());
}

bool crc32c_hardware() {
  static const bool hardware = detect_hardware();
  return hardware;
}

}  // namespace balanced::storage
