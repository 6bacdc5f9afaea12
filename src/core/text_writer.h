// Appends text to a string through a raw cursor: the room for the most the caller can
// write is made once, so no write checks capacity, and finish() cuts the string to what
// was written. For the encoders on every request's path (JSON bodies, response heads),
// where appending piece by piece spent more instructions on capacity checks than on text.
#pragma once

#include <cassert>
#include <cstring>
#include <string>
#include <string_view>

namespace balanced::core {

class TextWriter {
 public:
  // REQUIRES: the caller writes at most `room` bytes before finish().
  TextWriter(std::string& out, size_t room) : out_(out), start_(out.size()) {
    out.resize(start_ + room);
    cursor_ = out.data() + start_;
  }
  TextWriter(const TextWriter&) = delete;
  TextWriter& operator=(const TextWriter&) = delete;

  void raw(std::string_view text) {
    std::memcpy(cursor_, text.data(), text.size());
    cursor_ += text.size();
  }
  void raw(char c) { *cursor_++ = c; }
  // Bytes written so far.
  size_t written() const { return static_cast<size_t>(cursor_ - (out_.data() + start_)); }
  // Where the next byte goes, for a caller that writes in place; advance() past what it wrote.
  char* cursor() { return cursor_; }
  void advance(char* to) { cursor_ = to; }
  void finish() {
    assert(cursor_ <= out_.data() + out_.size());  // the room the caller promised held
    out_.resize(static_cast<size_t>(cursor_ - out_.data()));
  }

 private:
  std::string& out_;
  const size_t start_;
  char* cursor_;
};

}  // namespace balanced::core
