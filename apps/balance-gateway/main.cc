// balance-gateway: the one public entry point (DESIGN.md section 8). Flags into a
// Config (config.h), the components wired and served (service.h), TLS reloaded on
// SIGHUP, drained on SIGTERM.
#include "config.h"
#include "observe/log.h"
#include "service.h"
#include "service/runtime.h"

int main(int argc, char** argv) {
  using namespace balanced;
  CLI::App cli{"balance-gateway: the API gateway in front of balanced"};
  app::Config config;
  app::add_flags(cli, config);
  CLI11_PARSE(cli, argc, argv);

  observe::init_logging(config.log_level, "balance-gateway");
  if (auto status = app::finish(config); !status.ok()) return service::fail(status.detail());
  service::block_signals();
  auto running = app::Service::start(std::move(config));
  if (!running.ok()) return service::fail(running.error().detail);
  app::Service& gateway = *running.value();
  gateway.drain(service::wait_for_stop([&gateway] { gateway.reload_tls(); }));
  return 0;
}
