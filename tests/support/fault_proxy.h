// A TCP proxy for fault tests, in the test process: it listens on 127.0.0.1 and a free
// port and relays every connection to a target, until told otherwise:
//   pass        relay (the default);
//   move(port)  new connections go to another target (an endpoint that moves on failover);
//   blackhole   accept, read and drop everything, answer nothing (a network that lost the
//               route: nothing is refused, everything waits);
//   reset       close every connection, new ones at once (RST: a refused path);
//   drop_after  relay, but once the client has sent `marker` (a COMMIT), drop what the
//               server answers and close: the statement ran, its answer was lost.
// One thread, poll(2), every socket non-blocking; stopped and joined by its destructor.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace balanced::testing {

class FaultProxy {
 public:
  enum class Mode { pass, blackhole, reset, drop_after };

  explicit FaultProxy(uint16_t target_port) : target_port_(target_port) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    const int yes = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address);
    ::listen(listener_, 256);
    socklen_t length = sizeof address;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    non_blocking(listener_);
    thread_ = std::thread([this] { run(); });
  }
  ~FaultProxy() {
    stopping_ = true;
    thread_.join();
    for (auto& pair : pairs_) close_pair(pair);
    ::close(listener_);
  }
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  uint16_t port() const { return port_; }
  // New connections go to `port` from now on; open ones are closed (the old server is
  // gone, and a client must not keep talking to it).
  void move(uint16_t port) {
    std::lock_guard lock(mutex_);
    target_port_ = port;
    close_all_ = true;
  }
  void set_mode(Mode mode, std::string marker = {}) {
    std::lock_guard lock(mutex_);
    mode_ = mode;
    marker_ = std::move(marker);
    if (mode == Mode::reset) close_all_ = true;
  }
  // Answers dropped after the marker, since the start.
  int dropped_answers() const { return dropped_.load(); }

 private:
  struct Pair {
    int client = -1;
    int server = -1;
    std::string to_server;  // bytes waiting for the server
    std::string to_client;
    std::string seen;       // the client's last bytes, to find the marker across reads
    bool marker_sent = false;
  };

  static void non_blocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }
  static void close_pair(Pair& pair) {
    if (pair.client >= 0) ::close(pair.client);
    if (pair.server >= 0) ::close(pair.server);
    pair.client = pair.server = -1;
  }
  static void reset_close(int fd) {
    if (fd < 0) return;
    linger hard{1, 0};  // RST, as a refused or broken path shows it
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    ::close(fd);
  }

  int connect_target(uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      ::close(fd);
      return -1;
    }
    const int yes = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
    non_blocking(fd);
    return fd;
  }

  // Moves what is readable on `from` into `buffer`; false when `from` closed or failed.
  static bool pull(int from, std::string& buffer) {
    char chunk[16384];
    for (;;) {
      const ssize_t n = ::recv(from, chunk, sizeof chunk, 0);
      if (n > 0) {
        buffer.append(chunk, static_cast<size_t>(n));
        continue;
      }
      if (n == 0) return false;
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
  }
  // Writes what it can of `buffer` to `to`; false when `to` failed.
  static bool push(int to, std::string& buffer) {
    while (!buffer.empty()) {
      const ssize_t n = ::send(to, buffer.data(), buffer.size(), MSG_NOSIGNAL);
      if (n > 0) {
        buffer.erase(0, static_cast<size_t>(n));
        continue;
      }
      return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
    return true;
  }

  void run() {
    while (!stopping_) {
      Mode mode;
      uint16_t target;
      std::string marker;
      bool close_all;
      {
        std::lock_guard lock(mutex_);
        mode = mode_;
        target = target_port_;
        marker = marker_;
        close_all = close_all_;
        close_all_ = false;
      }
      if (close_all) {
        for (auto& pair : pairs_) {
          reset_close(pair.client);
          reset_close(pair.server);
          pair.client = pair.server = -1;
        }
        pairs_.clear();
      }
      std::vector<pollfd> fds{{listener_, POLLIN, 0}};
      for (auto& pair : pairs_) {
        fds.push_back({pair.client, static_cast<short>(POLLIN | (pair.to_client.empty() ? 0 : POLLOUT)), 0});
        fds.push_back({pair.server, static_cast<short>(POLLIN | (pair.to_server.empty() ? 0 : POLLOUT)), 0});
      }
      ::poll(fds.data(), fds.size(), 20);
      if (fds[0].revents & POLLIN) {
        for (;;) {
          const int client = ::accept(listener_, nullptr, nullptr);
          if (client < 0) break;
          non_blocking(client);
          if (mode == Mode::reset) {
            reset_close(client);
            continue;
          }
          const int server = mode == Mode::blackhole ? -1 : connect_target(target);
          if (server < 0 && mode != Mode::blackhole) {
            reset_close(client);  // the target refuses: so does the proxy
            continue;
          }
          pairs_.push_back(Pair{client, server, {}, {}, {}, false});
        }
      }
      for (size_t i = 0; i < pairs_.size(); ++i) {
        Pair& pair = pairs_[i];
        const pollfd& c = fds[1 + 2 * i];
        const pollfd& s = fds[2 + 2 * i];
        bool alive = true;
        if (c.revents & (POLLIN | POLLHUP | POLLERR)) {
          std::string incoming;
          alive = pull(pair.client, incoming);
          if (mode == Mode::blackhole || pair.server < 0) {
            incoming.clear();  // swallowed
          } else {
            if (mode == Mode::drop_after && !marker.empty() && !pair.marker_sent) {
              pair.seen += incoming;
              if (pair.seen.find(marker) != std::string::npos) pair.marker_sent = true;
              if (pair.seen.size() > 4096) pair.seen.erase(0, pair.seen.size() - 4096);
            }
            pair.to_server += incoming;
          }
        }
        if (alive && pair.server >= 0 && (s.revents & (POLLIN | POLLHUP | POLLERR))) {
          std::string answer;
          alive = pull(pair.server, answer);
          if (pair.marker_sent && !answer.empty()) {
            // The statement reached the server; its answer is lost with the connection.
            dropped_.fetch_add(1);
            alive = false;
          } else {
            pair.to_client += answer;
          }
        }
        if (alive && pair.server >= 0) alive = push(pair.server, pair.to_server);
        if (alive) alive = push(pair.client, pair.to_client);
        if (!alive) {
          reset_close(pair.client);
          reset_close(pair.server);
          pair.client = pair.server = -1;
        }
      }
      pairs_.erase(std::remove_if(pairs_.begin(), pairs_.end(), [](const Pair& p) { return p.client < 0; }),
                   pairs_.end());
    }
  }

  int listener_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> dropped_{0};
  std::mutex mutex_;
  uint16_t target_port_;
  Mode mode_ = Mode::pass;
  std::string marker_;
  bool close_all_ = false;
  std::vector<Pair> pairs_;  // the proxy thread's own
};

}  // namespace balanced::testing
