// One HTTP/1.1 request on a connection of its own, plain or TLS, within a deadline: what
// balanced sends out (the JWKS fetch, webhooks). Blocking: it runs its own io_context on
// the calling thread. Beast and Asio templates live only in client.cc.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

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
  bool status_only = false;  // read the answer's head only: its body is not wanted
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

}  // namespace balanced::http
