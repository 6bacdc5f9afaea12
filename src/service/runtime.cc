#include "service/runtime.h"

#include <signal.h>

#include "observe/log.h"

namespace balanced::service {
namespace {

sigset_t handled_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  return signals;
}

}  // namespace

void block_signals() {
  const sigset_t signals = handled_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int wait_for_stop(const std::function<void()>& on_reload) {
  const sigset_t signals = handled_signals();
  for (;;) {
    int signal_number = 0;
    if (sigwait(&signals, &signal_number) != 0) continue;
    if (signal_number != SIGHUP) return signal_number;
    observe::log(observe::LogLevel::info, "reloading", {{"signal", "SIGHUP"}});
    if (on_reload) on_reload();
  }
}

int fail(std::string_view message) {
  observe::log(observe::LogLevel::error, message);
  return 1;
}

bool set_listen(std::string_view value, http::ServerOptions& options) {
  auto parsed = net::parse_host_port(value, true);
  if (!parsed) return false;
  options.host = parsed->host;
  options.port = parsed->port;
  return true;
}

Status AdminListener::start(std::string_view address) {
  http::ServerOptions options;
  if (!set_listen(address, options)) {
    return Status(Code::invalid_request, "--admin-listen: expected HOST:PORT");
  }
  options.threads = 1;
  options.thread_name = "admin";
  options.body_bytes_max = 4096;
  server_ = std::make_unique<http::Server>(options, endpoints_);
  return server_->start();
}

void AdminListener::stop() {
  if (server_) server_->shutdown(1000);
}

}  // namespace balanced::service
