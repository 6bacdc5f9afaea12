// libFuzzer target: the HTTP server's reading of a connection (src/http/server.cc feeding
// Beast's parser by hand, the body and chunk-line bounds, 100-continue, pipelining).
// A real http::Server runs in this process on a loopback port with a handler that
// echoes; each input is sent on a fresh connection, in fragments whose sizes the input's
// first byte picks, then the client stops writing. The server must answer or close
// within the bound below (a hang is a crash here), and must still answer a plain request
// afterwards. Anything it answers must be a well-formed HTTP/1.1 status line.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http/server.h"

namespace {

using namespace balanced;

// How long one input may keep the server from answering or closing.
constexpr int kAnswerWaitMs = 5000;

class Echo final : public http::Handler {
 public:
  void handle(http::Request&& request, http::Respond respond) override {
    http::Response response;
    response.content_type = "text/plain";
    response.body = request.method + " " + request.path + " " + request.body;
    respond(std::move(response));
  }
  size_t body_bytes_max(std::string_view, std::string_view target) const override {
    return target.starts_with("/small") ? 16 : 0;
  }
};

struct Fixture {
  Echo echo;
  http::Server server{[] {
                        http::ServerOptions options;
                        options.port = 0;
                        options.threads = 1;
                        options.header_bytes_max = 4096;
                        options.body_bytes_max = 64 * 1024;
                        return options;
                      }(),
                      echo};
  Fixture() {
    if (!server.start().ok()) {
      std::fprintf(stderr, "http_fuzz: the server did not start\n");
      std::abort();
    }
  }
};

int connect_to(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) std::abort();
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) std::abort();
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// Everything the server sends until it closes; aborts (a finding) if it neither answers
// nor closes in time. A reset counts as closing.
std::string read_until_closed(int fd) {
  std::string received;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kAnswerWaitMs);
  char buffer[16384];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      std::fprintf(stderr, "http_fuzz: the server neither answered nor closed\n");
      std::abort();
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) return received;
    received.append(buffer, static_cast<size_t>(n));
  }
}

// Every answer starts with a status line the server may send.
void check_answers(std::string_view received) {
  if (received.empty()) return;
  if (!received.starts_with("HTTP/1.1 ") && !received.starts_with("HTTP/1.0 ")) {
    std::fprintf(stderr, "http_fuzz: not a status line: %.40s\n", std::string(received).c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture fixture;
  if (size == 0) return 0;
  // The first byte picks the fragment size (1 to 256 bytes); the rest is the connection.
  const size_t fragment = 1 + data[0];
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);

  const int fd = connect_to(fixture.server.port());
  for (size_t at = 0; at < input.size(); at += fragment) {
    const std::string_view piece = input.substr(at, fragment);
    if (::send(fd, piece.data(), piece.size(), MSG_NOSIGNAL) < 0) break;  // closed on us
  }
  ::shutdown(fd, SHUT_WR);
  check_answers(read_until_closed(fd));
  ::close(fd);

  // The server is still there for the next client.
  const int probe = connect_to(fixture.server.port());
  const std::string_view request = "GET /alive HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  if (::send(probe, request.data(), request.size(), MSG_NOSIGNAL) < 0) std::abort();
  const std::string answer = read_until_closed(probe);
  ::close(probe);
  if (!answer.starts_with("HTTP/1.1 200 ") || answer.find("GET /alive ") == std::string::npos) {
    std::fprintf(stderr, "http_fuzz: the server no longer answers\n");
    std::abort();
  }
  return 0;
}
