// fault_proxy: tests/support/fault_proxy.h as a program, for bench/failover.sh.
// Usage: fault_proxy TARGET_PORT
// Prints "listening PORT" on stdout, then takes one command a line on stdin: pass,
// blackhole, reset, move PORT, drop-after MARKER. Ends at the end of its input.
#include <cstdio>
#include <iostream>
#include <string>

#include "support/fault_proxy.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fault_proxy TARGET_PORT\n");
    return 2;
  }
  const int target = std::atoi(argv[1]);
  if (target <= 0 || target > 65535) {
    std::fprintf(stderr, "fault_proxy: bad port %s\n", argv[1]);
    return 2;
  }
  balanced::testing::FaultProxy proxy(static_cast<uint16_t>(target));
  std::printf("listening %u\n", proxy.port());
  std::fflush(stdout);
  using Mode = balanced::testing::FaultProxy::Mode;
  for (std::string line; std::getline(std::cin, line);) {
    if (line == "pass") {
      proxy.set_mode(Mode::pass);
    } else if (line == "blackhole") {
      proxy.set_mode(Mode::blackhole);
    } else if (line == "reset") {
      proxy.set_mode(Mode::reset);
    } else if (line.rfind("move ", 0) == 0) {
      proxy.move(static_cast<uint16_t>(std::atoi(line.c_str() + 5)));
    } else if (line.rfind("drop-after ", 0) == 0) {
      proxy.set_mode(Mode::drop_after, line.substr(11));
    } else if (!line.empty()) {
      std::fprintf(stderr, "fault_proxy: unknown command '%s'\n", line.c_str());
      continue;
    }
    std::printf("ok %s\n", line.c_str());
    std::fflush(stdout);
  }
  return 0;
}
