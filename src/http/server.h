// The HTTP/1.1 server. Each worker thread runs its own io_context; one acceptor hands
// new connections to the workers in turn, and a connection stays on its worker's thread,
// so no request crosses threads and no lock guards a session.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/codes.h"
#include "http/message.h"

namespace balanced::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;  // 0: any free port, see Server::port()
  size_t threads = 2;
  size_t body_bytes_max = 64 * 1024;
  size_t header_bytes_max = 16 * 1024;
  size_t connections_max = 10000;
  // A connection idle, or slow to send a request or take a response, longer than this is
  // closed. Checked once a second by each worker (no timer per read).
  int64_t read_timeout_ms = 30000;
};

class Server {
 public:
  Server(ServerOptions options, Handler& handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts the worker threads.
  Status start();
  uint16_t port() const;
  // Stops accepting new connections; open ones are served on.
  void stop_accepting();
  // Closes idle connections, lets in-flight requests be answered for up to grace_ms,
  // then stops the threads. Call after the engine has drained.
  void shutdown(int64_t grace_ms);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace balanced::http
