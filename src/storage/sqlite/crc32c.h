// CRC-32C (Castagnoli), the commit log's record checksum: the SSE4.2 crc32 instruction
// where the CPU has it (chosen once, at first use), else a table, one byte at a time.
// Both give the same values; crc32c_portable is the table alone, for tests.
#pragma once

#include <cstdint>
#include <string_view>

namespace balanced::storage {

// The CRC of `bytes` continued from `crc` (0 to start): crc32c(crc32c(0, a), b) is the
// CRC of a followed by b.
uint32_t crc32c(uint32_t crc, std::string_view bytes);
uint32_t crc32c_portable(uint32_t crc, std::string_view bytes);
// Whether crc32c() uses the instruction.
bool crc32c_hardware();

}  // namespace balanced::storage
