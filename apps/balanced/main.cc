// balanced: the balance service. Flags into a Config (config.h), the components wired
// and served (service.h), drained on SIGTERM.
#include "config.h"
#include "observe/log.h"
#include "service.h"
#include "service/runtime.h"

int main(int argc, char** argv) {
  using namespace balanced;
  CLI::App cli{"balanced: real-time account balances"};
  app::Config config;
  app::add_flags(cli, config);
  CLI11_PARSE(cli, argc, argv);

  observe::init_logging(config.log_level);
  if (auto status = app::finish(config); !status.ok()) return service::fail(status.detail());
  service::block_signals();
  auto running = app::Service::start(std::move(config));
  if (!running.ok()) return service::fail(running.error().detail);
  running.value()->drain(service::wait_for_stop({}));
  return 0;
}
