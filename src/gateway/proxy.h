// Forwards requests to the replicas over keep-alive connections: one pool per worker
// thread and replica, so a request never leaves the thread that received it.
//
// A request whose connection was refused (nothing was sent: a replica restarting) is sent
// to another replica, whatever it is. One that fails on a connection error after it was
// sent, before any answer, is retried once on another replica when that is safe
// (`retry_safe`: a GET, a PATCH, or a POST that carries its own id); otherwise 502. No
// answer within the timeout: 504, never retried (the transfer may have committed; the
// client retries with the same id and gets the one outcome).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "gateway/upstream.h"
#include "http/message.h"
#include "http/server.h"

namespace balanced::gateway {

struct ProxyOptions {
  int64_t timeout_ms = 10'000;          // --upstream-timeout-ms: whole exchange
  int64_t connect_timeout_ms = 1'000;   // a slower connect counts as a connection failure
  size_t idle_per_replica_max = 512;    // kept-alive connections per worker and replica
  // An idle connection older than this is closed rather than reused: well under
  // balanced's own idle timeout (30 s), so a reused connection is never one it is closing.
  int64_t idle_ms_max = 10'000;
  size_t response_bytes_max = 16 * 1024 * 1024;
  // Attempts of one request in all: when every failure was a refused connection (a
  // rolling restart can refuse on two replicas at once), and otherwise.
  int attempts_when_refused_max = 3;
  int attempts_when_failed_max = 2;
  // A streamed answer (text/event-stream) whose replica sent nothing for this long is
  // closed: two missed heartbeats of balanced's 15 s.
  int64_t stream_idle_ms = 30'000;
};

// A streamed answer's body (GET /events/stream), read from the replica as it comes.
class UpstreamBody {
 public:
  using Piece = std::function<void(std::optional<std::string>)>;
  virtual ~UpstreamBody() = default;
  // Calls `piece` on the worker's thread with the body's next bytes, or with nullopt at
  // its end, on a failure, or when the replica sent nothing for stream_idle_ms. The next
  // read follows the last piece (one piece is all a relay holds).
  virtual void read(Piece piece) = 0;
  // Closes the replica's side (the client left): a read under way ends with nullopt.
  virtual void close() = 0;
};

struct Forwarded {
  enum class Result { answered, no_replica, failed, timed_out };
  Result result = Result::failed;
  http::Response response;  // when answered (a streamed answer's head)
  std::shared_ptr<UpstreamBody> body;  // a streamed answer's body, read after the head
  std::string replica;      // the one that answered (or failed last)
  double upstream_seconds = 0;
  bool retried = false;
};

struct ProxyStats {
  ProxyStats(observe::Registry& registry, const std::string& prefix);
  prometheus::Histogram& upstream_seconds;
  prometheus::Counter& retries;
  prometheus::Counter& failures;
  prometheus::Counter& timeouts;
};

class Proxy {
 public:
  using Done = std::function<void(Forwarded&&)>;
  // The server (its worker contexts), upstreams and stats (may be null) must outlive it.
  Proxy(http::Server& server, Upstreams& upstreams, ProxyOptions options, ProxyStats* stats);
  ~Proxy();
  // On worker `worker`'s thread; `done` runs there too.
  // `timeout_ms` above the options' gives this exchange longer (a long-poll). `stream`: a
  // 200 of type text/event-stream is handed over at its head (Forwarded::body), free of the
  // timeout and the size bound from then on, its connection never reused.
  void forward(size_t worker, http::Request&& request, bool retry_safe, Done done, int64_t timeout_ms = 0,
               bool stream = false);
  // Closes the pools. Call after the server's threads have stopped.
  void close();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace balanced::gateway
