// A Redis and Redis Cluster client on hiredis (synchronous contexts, pooled per node).
//
// Cluster routing is ours (Debian has no cluster client): a key's slot is CRC16 of its
// hash tag (or of the whole key) mod 16384; the slot table comes from CLUSTER SLOTS;
// a MOVED reply updates the slot and refreshes the table, an ASK reply is followed once
// with ASKING. Against a single server every slot maps to it and redirections never come.
//
// Every wait is bounded (timeout_ms for connect and for each reply), and each node has a
// circuit breaker: after failures_to_open consecutive failures the node is skipped for
// open_ms, so a dead Redis costs no latency; then one request probes it again.
#pragma once

#include <hiredis/hiredis.h>

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

namespace balanced::redis {

struct Endpoint {
  std::string host;
  uint16_t port = 6379;
  std::string address() const { return host + ":" + std::to_string(port); }
  bool operator==(const Endpoint&) const = default;
};

struct ClientOptions {
  std::vector<Endpoint> seeds;
  bool cluster = false;
  int timeout_ms = 200;            // connect, and each reply
  int failures_to_open = 3;        // consecutive failures that open a node's breaker
  int open_ms = 1000;              // how long an open breaker skips its node
  int redirections_max = 5;        // MOVED/ASK hops for one command
  int refresh_interval_ms_min = 100;  // slot-table refreshes are at most this frequent
  size_t idle_connections_max = 64;   // per node
};

// Parses redis://host:port and redis-cluster://h1:p1,h2:p2,... into seeds.
Result<ClientOptions> parse_url(std::string_view url);

// The cluster slot of a key (CRC16-XMODEM of its hash tag, mod 16384).
uint16_t key_slot(std::string_view key);

// A reply, copied out of hiredis.
struct Reply {
  enum class Type { string, array, integer, nil, status, error };
  Type type = Type::nil;
  int64_t integer = 0;
  std::string text;  // string, status or error
  std::vector<Reply> elements;
  bool is_error() const { return type == Type::error; }
};

using Command = std::vector<std::string>;

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

  // Reloads the slot table from any reachable node (cluster mode). Thread-safe.
  Status refresh_slots();
  // Nodes the client knows, for tests and metrics.
  std::vector<Endpoint> nodes();
  const ClientOptions& options() const { return options_; }

 private:
  Node& node_for(std::string_view key);
  Node& node_at(const Endpoint& endpoint);
  // Sends `command` to the owner of `key`, following MOVED and ASK redirections.
  Result<Reply> follow(std::string_view key, const Command& command);
  // Sends `command` once to the node an ASK reply names, after ASKING.
  Result<Reply> follow_ask(const Reply& ask, const Command& command);
  void maybe_refresh();

  const ClientOptions options_;
  Mutex mutex_;
  std::vector<std::unique_ptr<Node>> nodes_ GUARDED_BY(mutex_);  // never shrinks
  // Slot -> node, read without the lock (a torn read only misroutes, and MOVED corrects).
  std::array<std::atomic<Node*>, 16384> slots_;
  std::atomic<int64_t> last_refresh_ms_{0};
};

}  // namespace balanced::redis
