// What every main shares: stop and reload signals, the admin listener, failing loudly.
// The mains in apps/ only parse flags and wire components; this keeps them from
// copying each other.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "http/admin.h"
#include "http/server.h"
#include "net/url.h"

namespace balanced::service {

// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread and every thread it starts
// later (call it first in main), and ignores SIGPIPE.
void block_signals();
// Waits for SIGTERM or SIGINT and returns it; runs `on_reload` for each SIGHUP meanwhile.
int wait_for_stop(const std::function<void()>& on_reload);

// Logs `message` as an error; returns the exit code 1.
int fail(std::string_view message);

// Parses a HOST:PORT flag value into `options`; false when malformed.
bool set_listen(std::string_view value, http::ServerOptions& options);

// The admin endpoints on a listener of their own (plain HTTP, one thread "admin-0").
class AdminListener {
 public:
  // `endpoints` must outlive the listener.
  explicit AdminListener(http::AdminEndpoints& endpoints) : endpoints_(endpoints) {}
  // Starts serving on `address` (HOST:PORT).
  Status start(std::string_view address);
  uint16_t port() const { return server_ ? server_->port() : 0; }
  void stop();

 private:
  http::AdminEndpoints& endpoints_;
  std::unique_ptr<http::Server> server_;
};

}  // namespace balanced::service
