// A blocking HTTP/1.1 client on plain POSIX sockets (or TLS through OpenSSL), for tests:
// it can send anything, including garbage, truncated and pipelined requests, and parse
// what comes back.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>

namespace balanced::testing {

// The header lines of a message head (its first line, the start line, skipped), by
// lower-case name; the last of a repeated name wins.
inline std::map<std::string, std::string> parse_header_lines(const std::string& head) {
  std::map<std::string, std::string> headers;
  const size_t first_end = head.find("\r\n");
  size_t position = first_end == std::string::npos ? head.size() : first_end + 2;
  while (position < head.size()) {
    size_t end = head.find("\r\n", position);
    if (end == std::string::npos) end = head.size();
    const std::string line = head.substr(position, end - position);
    const size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      size_t value_start = colon + 1;
      while (value_start < line.size() && line[value_start] == ' ') ++value_start;
      headers[name] = line.substr(value_start);
    }
    position = end + 2;
  }
  return headers;
}

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

class HttpClient {
 public:
  explicit HttpClient(uint16_t port, int timeout_ms = 10000) : port_(port), timeout_ms_(timeout_ms) {}
  // Over TLS, trusting only `ca_file` and checking the name "localhost".
  HttpClient(uint16_t port, const std::string& ca_file, int timeout_ms = 10000)
      : port_(port), timeout_ms_(timeout_ms), ca_file_(ca_file) {}
  ~HttpClient() {
    close();
    if (tls_context_) SSL_CTX_free(tls_context_);
  }
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  bool connect() {
    close();
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port_);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      close();
      return false;
    }
    if (!ca_file_.empty() && !handshake()) {
      close();
      return false;
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    buffer_.clear();
    return true;
  }

  void close() {
    if (tls_) {
      SSL_free(tls_);
      tls_ = nullptr;
    }
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  bool send_raw(const std::string& bytes) {
    if (fd_ < 0 && !connect()) return false;
    size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = tls_ ? SSL_write(tls_, bytes.data() + sent, static_cast<int>(bytes.size() - sent))
                             : ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  // Reads one response; nullopt on timeout or a closed connection. `to_head`: the
  // answer to a HEAD, which ends at its headers whatever its Content-Length says.
  std::optional<HttpResponse> read_response(bool to_head = false) {
    size_t header_end = std::string::npos;
    while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return std::nullopt;
    }
    HttpResponse response;
    const std::string head = buffer_.substr(0, header_end);
    size_t line_end = head.find("\r\n");
    const std::string status_line = head.substr(0, line_end);
    if (status_line.size() < 12) return std::nullopt;
    response.status = std::stoi(status_line.substr(9, 3));
    response.headers = parse_header_lines(head);
    const size_t length = to_head ? 0 : std::stoul(response.header("content-length").empty()
                                         ? "0"
                                         : response.header("content-length"));
    while (buffer_.size() < header_end + 4 + length) {
      if (!fill()) return std::nullopt;
    }
    response.body = buffer_.substr(header_end + 4, length);
    buffer_.erase(0, header_end + 4 + length);
    return response;
  }

  std::optional<HttpResponse> request(const std::string& method, const std::string& target,
                                      const std::string& body = "",
                                      const std::map<std::string, std::string>& headers = {}) {
    std::string text = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    for (const auto& [name, value] : headers) text += name + ": " + value + "\r\n";
    if (!body.empty() || method == "POST") {
      if (!headers.contains("Content-Type")) text += "Content-Type: application/json\r\n";
      text += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    }
    text += "\r\n" + body;
    if (!send_raw(text)) {
      // The server may have closed an idle keep-alive connection: one reconnect.
      if (!connect() || !send_raw(text)) return std::nullopt;
    }
    auto response = read_response();
    if (response && response->header("connection") == "close") close();
    return response;
  }

  // What is buffered past the last response read, else the next bytes the server sends;
  // nullopt when it sends nothing within the timeout or closed. For a body read as it
  // comes (a stream).
  std::optional<std::string> read_some() {
    if (buffer_.empty() && !fill()) return std::nullopt;
    return std::exchange(buffer_, std::string());
  }

  // Stops sending: the server reads the end of the stream; answers can still be read.
  void finish_sending() {
    if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
  }

  // Everything the server sends until it closes the connection (a reset counts as
  // closing); nullopt when it neither sends nor closes within the timeout. Plain TCP.
  std::optional<std::string> read_until_closed() {
    for (;;) {
      pollfd p{fd_, POLLIN, 0};
      if (fd_ < 0 || ::poll(&p, 1, timeout_ms_) <= 0) return std::nullopt;
      char chunk[16384];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return std::exchange(buffer_, std::string());
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

  // True when the server closed the connection (reads EOF) within the timeout.
  bool closed_by_server() {
    char byte;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms_) <= 0) return false;
    return ::recv(fd_, &byte, 1, 0) <= 0;
  }

 private:
  bool handshake() {
    if (!tls_context_) {
      tls_context_ = SSL_CTX_new(TLS_client_method());
      SSL_CTX_set_min_proto_version(tls_context_, TLS1_2_VERSION);
      if (SSL_CTX_load_verify_locations(tls_context_, ca_file_.c_str(), nullptr) != 1) return false;
      SSL_CTX_set_verify(tls_context_, SSL_VERIFY_PEER, nullptr);
    }
    tls_ = SSL_new(tls_context_);
    SSL_set_tlsext_host_name(tls_, "localhost");
    SSL_set1_host(tls_, "localhost");
    SSL_set_fd(tls_, fd_);
    return SSL_connect(tls_) == 1;
  }

  bool fill() {
    pollfd p{fd_, POLLIN, 0};
    if (fd_ < 0) return false;
    const bool buffered = tls_ && SSL_pending(tls_) > 0;
    if (!buffered && ::poll(&p, 1, timeout_ms_) <= 0) return false;
    char chunk[16384];
    const ssize_t n = tls_ ? SSL_read(tls_, chunk, sizeof chunk) : ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<size_t>(n));
    return true;
  }

  uint16_t port_;
  int timeout_ms_;
  std::string ca_file_;
  SSL_CTX* tls_context_ = nullptr;
  SSL* tls_ = nullptr;
  int fd_ = -1;
  std::string buffer_;
};

}  // namespace balanced::testing
