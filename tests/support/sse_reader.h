// Reads a Server-Sent Events stream (GET /events/stream) for tests: opens it on an
// HttpClient, undoes the chunked framing as bytes come, and hands out one event or
// comment at a time.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "support/http_client.h"

namespace balanced::testing {

struct SseMessage {
  bool comment = false;  // a ": ..." line (a heartbeat)
  std::string id;
  std::string event;
  std::string data;
};

class SseReader {
 public:
  explicit SseReader(HttpClient& client) : client_(client) {}

  // Sends GET `target` with `headers`; the answer's head (its body, for a problem).
  std::optional<HttpResponse> open(const std::string& target, const std::map<std::string, std::string>& headers = {}) {
    std::string text = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n";
    for (const auto& [name, value] : headers) text += name + ": " + value + "\r\n";
    if (!client_.send_raw(text + "\r\n")) return std::nullopt;
    auto head = client_.read_response();
    chunked_ = head && head->header("transfer-encoding") == "chunked";
    return head;
  }

  // The next event or comment; nullopt when the stream ended (ended() tells), the
  // connection closed, or nothing came within the client's timeout.
  std::optional<SseMessage> next() {
    for (;;) {
      if (auto message = take()) return message;
      if (ended_) return std::nullopt;
      auto bytes = client_.read_some();
      if (!bytes) return std::nullopt;
      raw_ += *bytes;
      if (!dechunk()) return std::nullopt;
    }
  }

  // The body's last chunk came: the server ended the stream.
  bool ended() const { return ended_; }

 private:
  // Moves whole chunks from raw_ to text_. False on a framing error.
  bool dechunk() {
    if (!chunked_) {
      text_ += raw_;
      raw_.clear();
      return true;
    }
    for (;;) {
      const size_t line_end = raw_.find("\r\n");
      if (line_end == std::string::npos) return true;
      size_t size = 0;
      try {
        size = std::stoul(raw_.substr(0, line_end), nullptr, 16);
      } catch (...) {
        return false;
      }
      if (size == 0) {
        ended_ = true;
        raw_.clear();
        return true;
      }
      if (raw_.size() < line_end + 2 + size + 2) return true;
      if (raw_.compare(line_end + 2 + size, 2, "\r\n") != 0) return false;
      text_ += raw_.substr(line_end + 2, size);
      raw_.erase(0, line_end + 2 + size + 2);
    }
  }

  // One message from text_ (a block ended by a blank line), if whole.
  std::optional<SseMessage> take() {
    const size_t end = text_.find("\n\n");
    if (end == std::string::npos) return std::nullopt;
    const std::string block = text_.substr(0, end);
    text_.erase(0, end + 2);
    SseMessage message;
    size_t position = 0;
    while (position <= block.size()) {
      size_t line_end = block.find('\n', position);
      if (line_end == std::string::npos) line_end = block.size();
      const std::string line = block.substr(position, line_end - position);
      position = line_end + 1;
      if (line.starts_with(":")) {
        message.comment = true;
      } else if (line.starts_with("id: ")) {
        message.id = line.substr(4);
      } else if (line.starts_with("event: ")) {
        message.event = line.substr(7);
      } else if (line.starts_with("data: ")) {
        message.data += line.substr(6);
      }
    }
    return message;
  }

  HttpClient& client_;
  bool chunked_ = false;
  bool ended_ = false;
  std::string raw_;   // as received
  std::string text_;  // the body, unframed
};

}  // namespace balanced::testing
