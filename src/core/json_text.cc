#include "core/json_text.h"

#include <array>
#include <chrono>
#include <cstring>

namespace balanced::core {

namespace {

void put_digits(char* out, int value, int width) {
  for (int i = width - 1; i >= 0; --i) {
    out[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
}

}  // namespace

// Writes the text of format_time_ms() into `text`. The calendar arithmetic of <chrono>,
// not gmtime_r: glibc's takes a process-wide lock on every call (every response and
// every audit record formats a time). The date changes once a day: each thread keeps the
// last one it wrote (the calendar was ~200 of the ~290 instructions per time).
void put_time_ms(int64_t unix_ms, char* text) {
  using namespace std::chrono;
  constexpr int64_t kMsPerDay = 86'400'000;
  constexpr size_t kDateChars = 11;  // "2026-11-23T"
  thread_local int64_t last_day = -1;
  thread_local std::array<char, kDateChars> last_date{};
  if (unix_ms < 0) unix_ms = 0;
  const int64_t day = unix_ms / kMsPerDay;
  if (day != last_day) {
    const year_month_day date{sys_days{days{day}}};
    std::memcpy(last_date.data(), "0000-00-00T", kDateChars);
    put_digits(&last_date[0], static_cast<int>(date.year()) % 10000, 4);
    put_digits(&last_date[5], static_cast<int>(static_cast<unsigned>(date.month())), 2);
    put_digits(&last_date[8], static_cast<int>(static_cast<unsigned>(date.day())), 2);
    last_day = day;
  }
  std::memcpy(text, last_date.data(), kDateChars);
  const auto in_day = static_cast<int>(unix_ms % kMsPerDay);
  std::memcpy(text + kDateChars, "00:00:00.000Z", kTimeChars - kDateChars);
  put_digits(&text[11], in_day / 3'600'000, 2);
  put_digits(&text[14], in_day / 60'000 % 60, 2);
  put_digits(&text[17], in_day / 1'000 % 60, 2);
  put_digits(&text[20], in_day % 1'000, 3);
}

std::string format_time_ms(int64_t unix_ms) {
  std::string text(kTimeChars, '\0');
  put_time_ms(unix_ms, text.data());
  return text;
}

std::string json_string(std::string_view text) {
  std::string out;
  JsonWriter json(out, JsonWriter::escaped_max(text.size()));
  json.string(text);
  json.finish();
  return out;
}

}  // namespace balanced::core
