// A webhook receiver for tests: a blocking HTTP/1.1 server on 127.0.0.1 and a free port,
// on a thread of its own, one connection at a time: by default one request a connection
// (it answers Connection: close), or more while its answers keep it open. It records
// every request and answers with the status its policy gives, or the status, JSON body
// and delay its answer function gives.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cctype>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/http_client.h"

namespace balanced::testing {

struct ReceivedHook {
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  int status = 0;  // what it was answered
};

// What a receiver answers one request.
struct HookAnswer {
  int status = 200;
  std::string body;  // sent as application/json when not empty
  int delay_ms = 0;  // before answering (one request at a time: later ones wait too)
  bool keep_open = false;  // no Connection: close; the next request is read on it
  bool drop_after = false;  // with keep_open: closed anyway, without saying so (idle close)
};

class WebhookReceiver {
 public:
  // `policy(n)`: the status for the n-th request (0-based).
  explicit WebhookReceiver(std::function<int(size_t)> policy)
      : WebhookReceiver([policy = std::move(policy)](size_t n, const ReceivedHook&) { return HookAnswer{.status = policy(n)}; }) {}
  // `answer(n, request)`: the whole answer to the n-th request.
  explicit WebhookReceiver(std::function<HookAnswer(size_t, const ReceivedHook&)> answer) : answer_(std::move(answer)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address);
    ::listen(fd_, 64);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~WebhookReceiver() {
    stopping_ = true;
    thread_.join();
    ::close(fd_);
  }
  WebhookReceiver(const WebhookReceiver&) = delete;
  WebhookReceiver& operator=(const WebhookReceiver&) = delete;

  uint16_t port() const { return port_; }
  int connections() const { return connections_; }
  std::vector<ReceivedHook> received() {
    std::lock_guard lock(mutex_);
    return received_;
  }

 private:
  void serve() {
    while (!stopping_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      const int connection = ::accept(fd_, nullptr, nullptr);
      if (connection < 0) continue;
      ++connections_;
      std::string bytes;
      while (!stopping_ && handle(connection, bytes)) {
      }
      ::close(connection);
    }
  }

  // Reads one request (head, then Content-Length bytes; `bytes` keeps what came after it),
  // records it, answers. True: the connection stays open for the next.
  bool handle(int connection, std::string& bytes) {
    size_t head_end = std::string::npos;
    size_t length = 0;
    while (true) {
      if (head_end == std::string::npos && (head_end = bytes.find("\r\n\r\n")) != std::string::npos) {
        length = content_length(bytes.substr(0, head_end));
      }
      if (head_end != std::string::npos && bytes.size() >= head_end + 4 + length) break;
      pollfd p{connection, POLLIN, 0};
      if (::poll(&p, 1, 5000) <= 0) return false;
      char chunk[16384];
      const ssize_t n = ::recv(connection, chunk, sizeof chunk, 0);
      if (n <= 0) return false;
      bytes.append(chunk, static_cast<size_t>(n));
    }
    ReceivedHook hook;
    hook.headers = parse_header_lines(bytes.substr(0, head_end));
    hook.body = bytes.substr(head_end + 4, length);
    HookAnswer reply;
    {
      std::lock_guard lock(mutex_);
      reply = answer_(received_.size(), hook);
      hook.status = reply.status;
      received_.push_back(hook);
    }
    if (reply.delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(reply.delay_ms));
    const std::string answer = "HTTP/1.1 " + std::to_string(reply.status) + " X\r\n" +
                               (reply.body.empty() ? "" : "Content-Type: application/json\r\n") +
                               "Content-Length: " + std::to_string(reply.body.size()) +
                               (reply.keep_open ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n") + reply.body;
    (void)::send(connection, answer.data(), answer.size(), MSG_NOSIGNAL);
    bytes.erase(0, head_end + 4 + length);
    return reply.keep_open && !reply.drop_after;
  }

  static size_t content_length(const std::string& head) {
    const auto all = parse_header_lines(head);
    auto it = all.find("content-length");
    return it == all.end() ? 0 : std::stoul(it->second);
  }

  std::function<HookAnswer(size_t, const ReceivedHook&)> answer_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::mutex mutex_;
  std::vector<ReceivedHook> received_;
  std::thread thread_;
};

}  // namespace balanced::testing
