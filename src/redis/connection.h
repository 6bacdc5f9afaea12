// One connection to one Redis node: plain TCP, or TLS on Boost.Asio's ssl::stream over
// OpenSSL 3, authenticated with an ACL user and password when they are given
// (DESIGN.md section 12: ElastiCache and Memorystore with in-transit encryption and AUTH).
//
// Calls block the calling thread, each bounded by the timeout it is given: the client's
// pool and the redis-io threads own their connections and wait on nothing else. Commands
// are written in RESP by hand; replies are read by hiredis's RESP reader.
//
// The peer's certificate is checked against the trust store (--cache-ca-file, or the
// system's) and against the host the client dialed: the name in the URL, or the address a
// cluster node announces in CLUSTER SLOTS and MOVED (an IP address matches the
// certificate's IP SANs). The password is read again from its file for every new
// connection, so a rotated token is picked up without a restart.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/codes.h"

namespace balanced::redis {

struct Endpoint {
  std::string host;
  uint16_t port = 6379;
  std::string address() const;
  bool operator==(const Endpoint&) const = default;
};

// How a client reaches and proves itself to its nodes.
struct Security {
  bool tls = false;           // rediss:// and rediss-cluster://
  std::string ca_file;        // PEM bundle of trusted CAs; empty: the system's trust store
  std::string user;           // ACL user; empty: AUTH with the password alone (user "default")
  std::string password;       // from the URL; never logged
  std::string password_file;  // wins over `password`; read again for every new connection
  bool authenticates() const { return !user.empty() || !password.empty() || !password_file.empty(); }
};

// Why a connection could not be made. `network` is an outage (the node is away or slow);
// `auth` (credentials refused) and `tls` (certificate or handshake refused) are
// configuration, and fatal when a process starts.
enum class Failure { none, network, auth, tls };
std::string_view failure_name(Failure failure);

// A reply, copied out of hiredis's reader.
struct Reply {
  enum class Type { string, array, integer, nil, status, error };
  Type type = Type::nil;
  int64_t integer = 0;
  std::string text;  // string, status or error
  std::vector<Reply> elements;
  bool is_error() const { return type == Type::error; }
};

using Command = std::vector<std::string>;

// Appends `command` to `out` in RESP (an array of bulk strings).
void append_resp(std::string& out, const Command& command);

// The TLS settings every connection of a client shares (the CA bundle is read once).
class TlsContext {
 public:
  // Loads `security.ca_file` (or the system's trust store); an unreadable or empty bundle
  // is an error.
  static Result<std::shared_ptr<TlsContext>> make(const Security& security);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  TlsContext();
  std::unique_ptr<Impl> impl_;
};

class Connection {
 public:
  // Bounds of one connection's reading: a reply larger than this breaks the connection.
  static constexpr size_t reply_bytes_max = 64 * 1024 * 1024;

  // Resolves the host again, connects, handshakes (with `tls`, which must then be set)
  // and authenticates, all within `timeout_ms`. On failure returns null and says why.
  static std::unique_ptr<Connection> open(const Endpoint& endpoint, const Security& security,
                                          TlsContext* tls, int timeout_ms, Failure& failure,
                                          std::string& why);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Writes `request` (RESP, `replies` commands) and reads `replies` replies, within
  // `timeout_ms`. An error reply is a Reply; a Code::unavailable Error means the connection
  // broke or timed out, and it must then be dropped.
  Result<std::vector<Reply>> exchange(std::string_view request, size_t replies, int timeout_ms);
  // False once a call failed: the connection is not to be used again.
  bool usable() const;

 private:
  struct Impl;
  explicit Connection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace balanced::redis
