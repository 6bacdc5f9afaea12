// JSON text for every layer: a string literal escaped, a time in RFC 3339, and the
// writer the codecs build answers with. No parsing and no ledger types: the base (logs,
// problems, access logs) uses these, the ledger's codec (json_codec.h) builds on them.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "core/text_writer.h"

namespace balanced::core {

inline constexpr size_t kTimeChars = 24;  // "2026-11-23T21:00:00.000Z"

// RFC 3339 UTC with milliseconds: 2026-11-23T20:30:51.123Z
std::string format_time_ms(int64_t unix_ms);
// The same into text[0, kTimeChars).
void put_time_ms(int64_t unix_ms, char* text);
// A JSON string literal, quotes included; every byte outside printable ASCII escaped.
std::string json_string(std::string_view text);

// Writes JSON through a TextWriter: room for the most a caller can write is made once
// (a cached GET's answer is one allocation; appending field by field took ~1,500
// instructions per answer, counted with callgrind).
class JsonWriter {
 public:
  // The most an escaped string of `bytes` bytes takes: \u00XX per byte, and quotes.
  static constexpr size_t escaped_max(size_t bytes) { return 6 * bytes + 2; }
  // The most a member with a name of `name` bytes and a number or a time takes, comma
  // included.
  static constexpr size_t field_max(size_t name) { return name + 4 + 26; }

  JsonWriter(std::string& out, size_t room) : text_(out, room) {}
  void finish() { text_.finish(); }
  void raw(char c) { text_.raw(c); }

  // `text` as a JSON string, quoted and escaped.
  void string(std::string_view text) {
    static constexpr char kHex[] = "0123456789abcdef";
    char* cursor = text_.cursor();
    *cursor++ = '"';
    // Up to the first byte to escape, one copy: in the common case, all of it.
    const auto plain = [](char c) {
      const auto byte = static_cast<unsigned char>(c);
      return byte >= 0x20 && byte < 0x80 && c != '"' && c != '\\';
    };
    const auto prefix = static_cast<size_t>(std::find_if_not(text.begin(), text.end(), plain) - text.begin());
    std::memcpy(cursor, text.data(), prefix);
    cursor += prefix;
    for (const char c : text.substr(prefix)) {
      const auto byte = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        *cursor++ = '\\';
        *cursor++ = c;
      } else if (byte < 0x20 || byte >= 0x80) {
        // Control characters, and any non-ASCII byte (which no validated field holds, but
        // an echoed path may), as \u00XX: the output is always valid JSON and ASCII.
        std::memcpy(cursor, "\\u00", 4);
        cursor[4] = kHex[byte >> 4];
        cursor[5] = kHex[byte & 0x0f];
        cursor += 6;
      } else {
        *cursor++ = c;
      }
    }
    *cursor++ = '"';
    text_.advance(cursor);
  }

  // A member's name: `name` is a literal, written as it is (no escaping).
  void name(std::string_view name) {
    if (text_.written() > 1) text_.raw(',');  // past the opening brace
    text_.raw('"');
    text_.raw(name);
    text_.raw("\":");
  }
  void member(std::string_view name, std::string_view value) {
    this->name(name);
    string(value);
  }
  void member(std::string_view name, int64_t value) {
    this->name(name);
    text_.advance(std::to_chars(text_.cursor(), text_.cursor() + 20, value).ptr);
  }
  // A member whose value is JSON text already (room: its size).
  void json_member(std::string_view name, std::string_view json) {
    this->name(name);
    text_.raw(json);
  }
  void time_member(std::string_view name, int64_t unix_ms) {
    this->name(name);
    text_.raw('"');
    put_time_ms(unix_ms, text_.cursor());
    text_.advance(text_.cursor() + kTimeChars);
    text_.raw('"');
  }

 private:
  TextWriter text_;
};

}  // namespace balanced::core
