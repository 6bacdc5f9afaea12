// A Redis and Redis Cluster client: blocking connections (connection.h: TCP or TLS, ACL
// AUTH) pooled per node.
//
// Cluster routing is ours (Debian has no cluster client): a key's slot is CRC16 of its
// hash tag (or of the whole key) mod 16384; the slot table comes from CLUSTER SLOTS;
// a MOVED reply updates the slot and refreshes the table, an ASK reply is followed once
// with ASKING. Against a single server every slot maps to it and redirections never come.
//
// Every wait is bounded (timeout_ms for connect and for each reply), and each node has a
// circuit breaker: after failures_to_open consecutive failures the node is skipped for
// open_ms, so a dead Redis costs no latency; then one request probes it again. A refused
// certificate or AUTH is such a failure too (logged and counted apart: it is
// configuration, and alerted on), so a rotated password degrades the cache as an outage
// would until the password file holds the new one.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/codes.h"
#include "core/mutex.h"
#include "redis/connection.h"

namespace balanced::redis {

struct ClientOptions {
  std::vector<Endpoint> seeds;
  bool cluster = false;
  Security security;
  int timeout_ms = 200;            // connect, and each reply
  int failures_to_open = 3;        // consecutive failures that open a node's breaker
  int open_ms = 1000;              // how long an open breaker skips its node
  int redirections_max = 5;        // MOVED/ASK hops for one command
  int refresh_interval_ms_min = 100;  // slot-table refreshes are at most this frequent
  size_t idle_connections_max = 64;   // per node
};

// Parses redis[s]://[user[:password]@]host:port and
// redis[s]-cluster://[user[:password]@]h1:p1,h2:p2,... (the s: TLS) into options.
Result<ClientOptions> parse_url(std::string_view url);

// Security given apart from the URL (flags such as --cache-ca-file); what is set here
// wins over the URL.
struct SecurityOverrides {
  std::string ca_file;
  std::string user;
  std::string password_file;
};
void apply(const SecurityOverrides& overrides, ClientOptions& options);

// The cluster slot of a key (CRC16-XMODEM of its hash tag, mod 16384).
uint16_t key_slot(std::string_view key);

// Connections a client could not make for a reason other than the network, since it
// started (metrics: balanced_redis_connect_failures_total{reason}).
struct ClientCounters {
  uint64_t auth_failures = 0;
  uint64_t tls_failures = 0;
  uint64_t network_failures = 0;
};

class Client {
 public:
  explicit Client(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Runs one command on the node that owns `key`. An error reply is a Reply, not an
  // Error; Code::unavailable means the node could not be reached (or its breaker is open).
  Result<Reply> run(std::string_view key, const Command& command);
  // Runs commands (each with its key) pipelined, one round trip per node involved.
  // Replies are in order; a command whose node failed gets an Error.
  std::vector<Result<Reply>> run_many(const std::vector<std::pair<std::string, Command>>& commands);

  struct Node;
  // The node that currently owns `key` (opaque; stable for the client's life), for
  // callers that keep one queue per node. Thread-safe.
  const Node* route(std::string_view key) { return &node_for(key); }

  // Connects to each seed in turn, bypassing the pools and breakers, until one answers
  // PING. Says why none did: `failure` is network when every seed was unreachable, auth
  // or tls as soon as one refused the credentials or the certificate. Thread-safe.
  Status probe(Failure& failure);

  // Reloads the slot table from any reachable node (cluster mode). Thread-safe.
  Status refresh_slots();
  // Nodes the client knows, for tests and metrics.
  std::vector<Endpoint> nodes();
  const ClientOptions& options() const { return options_; }
  ClientCounters counters() const;
  // Why the TLS settings could not be loaded (the CA file); empty when they were, or
  // without TLS. Connections then fail as refused certificates.
  const std::string& tls_error() const { return tls_error_; }

 private:
  Node& node_for(std::string_view key);
  Node& node_at(const Endpoint& endpoint);
  // Sends `command` to the owner of `key`, following MOVED and ASK redirections.
  Result<Reply> follow(std::string_view key, const Command& command);
  // Sends `command` once to the node an ASK reply names, after ASKING.
  Result<Reply> follow_ask(const Reply& ask, const Command& command);
  void maybe_refresh();
  // A new connection to `endpoint` (TLS and AUTH as configured), or null with the reason,
  // counted by kind and logged when it is not the network.
  std::unique_ptr<Connection> connect(const Endpoint& endpoint, Failure& failure, std::string& why);

  const ClientOptions options_;
  std::shared_ptr<TlsContext> tls_;  // with security.tls; null if it could not be made
  std::string tls_error_;           // why tls_ is null
  struct AtomicCounters {
    std::atomic<uint64_t> auth_failures{0};
    std::atomic<uint64_t> tls_failures{0};
    std::atomic<uint64_t> network_failures{0};
  } counters_;
  Mutex mutex_;
  std::vector<std::unique_ptr<Node>> nodes_ GUARDED_BY(mutex_);  // never shrinks
  // Slot -> node, read without the lock (a torn read only misroutes, and MOVED corrects).
  std::array<std::atomic<Node*>, 16384> slots_;
  std::atomic<int64_t> last_refresh_ms_{0};
};

// Parses `url`, applies `overrides` and the timeout, builds the client and probes it once:
// a certificate or AUTH refused is an error (a process should not start on it); a Redis
// that cannot be reached is not (it may come up later; meanwhile the caller degrades), and
// `unreachable` then says why.
Result<std::shared_ptr<Client>> open_client(std::string_view url, const SecurityOverrides& overrides,
                                            int timeout_ms, std::string* unreachable);

}  // namespace balanced::redis
