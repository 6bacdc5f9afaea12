// HTTP/1.1 requests balanced sends out, plain or TLS, each within a deadline: one on a
// connection of its own (the JWKS fetch), or many over kept-alive connections (webhooks,
// the risk hook). Blocking: each connection runs its own io_context on the calling
// thread. Beast and Asio templates live only in client.cc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/codes.h"
#include "http/message.h"
#include "net/url.h"

namespace balanced::http {

// Where a request goes: parsed once from an http(s)://HOST[:PORT][/PATH] URL.
struct ClientTarget {
  std::string url;  // as given, for messages
  bool tls = true;
  net::HostPort address;
  std::string target;   // the path and query, "/" when none
  std::string ca_file;  // TLS: trusted besides the system's roots; empty for those only
};

// `flag` names the setting in errors. Plain http is taken only to a loopback host: what
// leaves the machine is encrypted and its server checked.
Result<ClientTarget> parse_client_target(std::string_view url, std::string_view flag, std::string ca_file = {});

struct ClientRequest {
  std::string method = "GET";
  Headers headers;  // besides Host, Content-Length and User-Agent
  std::string body;
  // Only the answer's status is wanted: its body is read (to keep the connection) but not
  // kept, and one past the bound ends the connection instead of the call.
  bool status_only = false;
};

struct ClientReply {
  int status = 0;
  std::string body;
};

// Resolves the name, connects, sends `request` and reads the whole answer (its body at
// most `body_bytes_max`), all within `timeout_ms`; unavailable on a resolution,
// connection, TLS or protocol failure or when the deadline passes.
Result<ClientReply> call(const ClientTarget& to, const ClientRequest& request, int64_t timeout_ms,
                         size_t body_bytes_max);

// One connection to one target, kept open between calls as long as the server keeps it,
// made again when it does not. A call that fails on a kept connection before any byte of
// its answer arrived (the server closed it while idle) is sent once more on a new one,
// within the same deadline: a request may then arrive twice, which every caller allows
// (webhooks are delivered at least once; the risk hook's question changes nothing).
// A connection idle longer than idle_reuse_max_ms is not reused: a load balancer or NAT
// on the way may have dropped it without a word, and a request into it would wait out
// its whole deadline. Not thread-safe: one caller at a time (ClientPool shares them).
class KeptConnection {
 public:
  // Below the idle timeouts of common load balancers (60 s and more).
  static constexpr int64_t idle_reuse_max_ms = 30'000;

  explicit KeptConnection(ClientTarget target, int64_t idle_reuse_ms = idle_reuse_max_ms);
  ~KeptConnection();
  KeptConnection(const KeptConnection&) = delete;
  KeptConnection& operator=(const KeptConnection&) = delete;

  // As call() above, on the kept connection.
  Result<ClientReply> call(const ClientRequest& request, int64_t timeout_ms, size_t body_bytes_max);
  // Connections opened so far.
  int64_t connections_opened() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Kept connections to one target for callers on many threads: a call takes an idle one
// or opens another, and gives it back; at most idle_max stay open between calls.
class ClientPool {
 public:
  static constexpr size_t idle_max = 64;
  explicit ClientPool(ClientTarget target) : target_(std::move(target)) {}
  Result<ClientReply> call(const ClientRequest& request, int64_t timeout_ms, size_t body_bytes_max);
  const ClientTarget& target() const { return target_; }
  // Connections opened so far by those now idle (tests).
  int64_t connections_opened();

 private:
  const ClientTarget target_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<KeptConnection>> idle_;
};

}  // namespace balanced::http
