// The HTTP/1.1 server, plain or TLS. Each worker thread runs its own io_context; one
// acceptor hands new connections to the workers in turn, and a connection stays on its
// worker's thread, so no request crosses threads and no lock guards a session.
//
// Every wait has a bound: a connection waits for a request's first byte at most
// idle_timeout_ms, then for the whole head at most head_timeout_ms, then for the body
// (and later for the client to take the response) at most body_timeout_ms. The sweeper
// of each worker checks the deadlines once a second (no timer per read).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/codes.h"
#include "http/message.h"

namespace boost::asio {
class io_context;
}

namespace balanced::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;  // 0: any free port, see Server::port()
  size_t threads = 2;
  size_t body_bytes_max = 64 * 1024;  // unless the handler says otherwise for a route
  size_t header_bytes_max = 16 * 1024;
  size_t connections_max = 10000;  // past it a new connection is closed at once
  int64_t idle_timeout_ms = 30000;
  int64_t head_timeout_ms = 10000;
  int64_t body_timeout_ms = 30000;
  // PEM files; both empty means plain HTTP. TLS 1.2 and 1.3 only.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string thread_name = "http";  // workers are named thread_name-N
  std::string server_header = "balanced";
};

class Server {
 public:
  // The handler must outlive the server. Creates the workers (not their threads).
  Server(ServerOptions options, Handler& handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Loads the TLS files, binds and starts the worker threads.
  Status start();
  uint16_t port() const;
  // The workers' io_contexts, for handlers that do I/O of their own on the thread that
  // received a request (Request::worker). Valid from construction to destruction.
  size_t worker_count() const;
  boost::asio::io_context& worker_context(size_t index);
  // Runs `run` on worker `worker`'s thread, for a handler whose work went elsewhere (a
  // Redis round) and comes back to the thread of its request. After shutdown() it may
  // never run (it is destroyed with the server). Thread-safe.
  void post(size_t worker, std::function<void()> run);
  // Rereads the certificate and key; new connections use them, open ones keep theirs.
  // On error the old ones stay in use.
  Status reload_tls();
  // Stops accepting new connections; open ones are served on.
  void stop_accepting();
  // Closes idle connections, ends streamed bodies (Respond::stream) once what was
  // written is out, lets in-flight requests be answered for up to grace_ms, then stops
  // the threads.
  void shutdown(int64_t grace_ms);
  size_t open_connections() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace balanced::http
