// A throwaway RabbitMQ node for system tests: the Debian rabbitmq-server (3.10) on free
// ports, everything under `dir`/rabbitmq, stopped by pid. A node that cannot start is a
// test failure (start() returns false with the reason in error()), never a skip.
//
// What it starts, both direct children of the test (Process):
//  - `epmd -port E -address 127.0.0.1` in the foreground: a private port mapper, so the
//    node never touches the machine's epmd on 4369 and we own its pid. (epmd always adds
//    the loopback addresses, so it also listens on [::1]:E; still loopback only.)
//  - `env -i -C dir/rabbitmq VARS... /usr/lib/rabbitmq/bin/rabbitmq-server`. Not
//    /usr/sbin/rabbitmq-server: that wrapper cds to /var/lib/rabbitmq and, as root, runs
//    the node through `su rabbitmq`. `env -i` gives the node only the variables below
//    (none of the test's RABBITMQ_*/ERL_* leaks in); `-C` puts its working directory in
//    the temp dir. env execs the script, so the forked pid is the script's /bin/sh.
//    Without RABBITMQ_ALLOW_INPUT the script does not exec the VM: it stays a parent
//    shell, runs `erl` (which execs beam.smp) in the background and waits; its SIGTERM
//    trap forwards SIGTERM to beam.smp. So: pid we fork = sh, its child = beam.smp (its
//    own child is erl_child_setup, which exits with it).
//
// The node's environment (each path in dir/rabbitmq):
//  HOME=home                       the Erlang cookie (home/.erlang.cookie) is created here,
//                                  not in /var/lib/rabbitmq
//  RABBITMQ_CONF_ENV_FILE=rabbitmq-env.conf (empty)  instead of /etc/rabbitmq/rabbitmq-env.conf
//  RABBITMQ_CONFIG_FILE=rabbitmq.conf   listener on 127.0.0.1:PORT, console log, no colours,
//                                  no log file; guest allowed from loopback only
//  RABBITMQ_ADVANCED_CONFIG_FILE=advanced.config ("[].")
//  RABBITMQ_ENABLED_PLUGINS_FILE=enabled_plugins ("[]."): no plugin, no management port
//  RABBITMQ_MNESIA_BASE=mnesia, RABBITMQ_LOG_BASE=log, RABBITMQ_PID_FILE=rabbitmq.pid
//  (beam.smp's pid), RABBITMQ_FEATURE_FLAGS_FILE=feature_flags, RABBITMQ_QUORUM_DIR=quorum,
//  ERL_CRASH_DUMP=erl_crash.dump   (a VM that dies writes its dump here, not in the cwd)
//  RABBITMQ_NODENAME=rabbit-test-PORT@localhost  unique per node on the machine
//  RABBITMQ_NODE_IP_ADDRESS=127.0.0.1, RABBITMQ_NODE_PORT=PORT   the AMQP listener
//  RABBITMQ_DIST_PORT=D            the Erlang distribution listener (listen_min = max = D)
//  ERL_EPMD_PORT=E, ERL_EPMD_ADDRESS=127.0.0.1   our epmd
//  ERL_AFLAGS="-start_epmd false -kernel inet_dist_use_interface {127,0,0,1}", read by
//                                  every Erlang VM of the node: the node and the
//                                  short-lived "epmd-starter" VM rabbit runs at boot
//                                  listen for distribution on 127.0.0.1 only, and no VM
//                                  spawns an `epmd -daemon` (one we would not own; without
//                                  this flag the starter does, and it lingers when our
//                                  epmd is gone)
//  PATH=/usr/bin:/bin:/usr/sbin:/sbin, LANG=LC_ALL=C.UTF-8
//
// Readiness: the AMQP port accepts and `amqp-declare-queue` of a queue succeeds (then the
// queue is deleted, the node is left empty). On this 2-core machine a start takes 7 to 12 s;
// start() waits up to 90 s. The first start on a dir creates the node; a start() after
// stop() starts the same node again (same ports, same mnesia: durable queues and their
// persistent messages survive).
//
// stop(): SIGTERM to beam.smp (the node shuts down cleanly: "SIGTERM received - shutting
// down", about 1 s), again each second (one that comes in the first moments of the VM's
// boot is lost), and waits for the sh we forked, which exits 0 once beam.smp is gone;
// while beam.smp does not exist yet, SIGTERM to the sh (its trap forwards it). After 30 s,
// kill(): SIGKILL to beam.smp, then the sh, then any process left with this node's
// environment (found in /proc by our RABBITMQ_MNESIA_BASE, signalled by pid). Then
// SIGTERM to our epmd. A start() that fails kill()s at once. Nothing is signalled by name.
#pragma once

#include <dirent.h>
#include <signal.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "support/process.h"
#include "support/servers.h"

#if __has_include(<amqp.h>)
#include <amqp.h>
#include <amqp_tcp_socket.h>
#define BALANCED_TESTING_HAVE_LIBRABBITMQ 1
#endif

namespace balanced::testing {

inline constexpr const char* kRabbitMqServerScript = "/usr/lib/rabbitmq/bin/rabbitmq-server";

// One message taken from a queue (RabbitMqServer::get).
struct AmqpMessage {
  std::string body;
  std::string message_id;
  std::string type;
  std::string content_type;
  std::string exchange;
  std::string routing_key;
  uint8_t delivery_mode = 0;  // 2: persistent
  bool redelivered = false;
  std::map<std::string, std::string> headers;  // the string-valued headers
};

class RabbitMqServer {
 public:
  explicit RabbitMqServer(std::filesystem::path dir) : dir_(std::move(dir) / "rabbitmq") {}
  RabbitMqServer(const RabbitMqServer&) = delete;
  RabbitMqServer& operator=(const RabbitMqServer&) = delete;
  ~RabbitMqServer() { stop(); }

  // Starts epmd and the node and waits until an AMQP queue declaration works (at most
  // `timeout_ms`); false with the reason in error(), and then nothing is left running.
  bool start(int timeout_ms = 90000) {
    error_.clear();
    if (node_.running()) return true;
    const std::string epmd = find_program("epmd");
    if (::access(kRabbitMqServerScript, X_OK) != 0 || epmd.empty() ||
        find_program("amqp-declare-queue").empty()) {
      error_ = std::string(kRabbitMqServerScript) +
               ", epmd or amqp-declare-queue not found: install rabbitmq-server and amqp-tools "
               "(scripts/install-deps.sh test)";
      return false;
    }
    std::error_code failed;
    for (const char* sub : {"home", "mnesia", "log", "quorum"})
      std::filesystem::create_directories(dir_ / sub, failed);
    if (failed) {
      error_ = "cannot create " + dir_.string() + ": " + failed.message();
      return false;
    }
    if (port_ == 0) {
      port_ = free_port();
      while (dist_port_ == 0 || dist_port_ == port_) dist_port_ = free_port();
      while (epmd_port_ == 0 || epmd_port_ == port_ || epmd_port_ == dist_port_)
        epmd_port_ = free_port();
    }
    write_file("enabled_plugins", "[].\n");
    write_file("advanced.config", "[].\n");
    write_file("rabbitmq-env.conf", "");
    write_file("rabbitmq.conf", "listeners.tcp.1 = 127.0.0.1:" + std::to_string(port_) +
                                    "\n"
                                    "loopback_users.guest = true\n"
                                    "log.console = true\n"
                                    "log.console.level = info\n"
                                    "log.console.use_colors = off\n"
                                    "log.file = false\n");

    const int start = starts_++;
    if (!epmd_.running()) {  // still up after kill()
      if (!epmd_.start({epmd, "-port", std::to_string(epmd_port_), "-address", "127.0.0.1"},
                       dir_ / ("epmd-" + std::to_string(start) + ".log"))) {
        error_ = "fork failed";
        return false;
      }
      if (!wait_until(epmd_, 10000, [&] { return port_open(epmd_port_); })) {
        error_ = "epmd did not start: " + epmd_.log();
        stop();
        return false;
      }
    }

    const auto at = [&](const char* name) { return (dir_ / name).string(); };
    std::vector<std::string> argv{
        "/usr/bin/env",
        "-i",
        "-C",
        dir_.string(),
        "PATH=/usr/bin:/bin:/usr/sbin:/sbin",
        "LANG=C.UTF-8",
        "LC_ALL=C.UTF-8",
        "HOME=" + at("home"),
        "ERL_EPMD_PORT=" + std::to_string(epmd_port_),
        "ERL_EPMD_ADDRESS=127.0.0.1",
        "ERL_CRASH_DUMP=" + at("erl_crash.dump"),
        "RABBITMQ_CONF_ENV_FILE=" + at("rabbitmq-env.conf"),
        "RABBITMQ_CONFIG_FILE=" + at("rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE=" + at("advanced.config"),
        "RABBITMQ_ENABLED_PLUGINS_FILE=" + at("enabled_plugins"),
        "RABBITMQ_MNESIA_BASE=" + at("mnesia"),
        "RABBITMQ_LOG_BASE=" + at("log"),
        "RABBITMQ_PID_FILE=" + at("rabbitmq.pid"),
        "RABBITMQ_FEATURE_FLAGS_FILE=" + at("feature_flags"),
        "RABBITMQ_QUORUM_DIR=" + at("quorum"),
        "RABBITMQ_NODENAME=rabbit-test-" + std::to_string(port_) + "@localhost",
        "RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
        "RABBITMQ_NODE_PORT=" + std::to_string(port_),
        "RABBITMQ_DIST_PORT=" + std::to_string(dist_port_),
        "ERL_AFLAGS=-start_epmd false -kernel inet_dist_use_interface {127,0,0,1}",
        kRabbitMqServerScript};
    log_path_ = dir_ / ("rabbitmq-" + std::to_string(start) + ".log");
    if (!node_.start(argv, log_path_)) {
      error_ = "fork failed";
      stop();
      return false;
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      if (!node_.running()) {
        error_ = "rabbitmq-server exited: " + log_tail();
        kill();
        stop();
        return false;
      }
      if (beam_ <= 0) beam_ = find_beam();
      if (port_open(port_) &&
          amqp({"amqp-declare-queue", "-q", "balanced-test-readiness"}, 10000).first == 0) {
        amqp({"amqp-delete-queue", "-q", "balanced-test-readiness"}, 10000);
        if (beam_ <= 0) beam_ = find_beam();
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    error_ = "rabbitmq-server not ready within " + std::to_string(timeout_ms / 1000) +
             " s: " + log_tail();
    kill();  // no clean shutdown for a node that did not come up
    stop();
    return false;
  }

  // Stops the node (SIGTERM to beam.smp, a clean shutdown), then epmd; idempotent.
  void stop() {
    if (node_.pid() > 0) {
      // SIGTERM again each second: one that comes in the first moments of the VM's boot
      // can be lost.
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      auto next_signal = std::chrono::steady_clock::now();
      while (node_.running() && std::chrono::steady_clock::now() < deadline) {
        if (beam_ <= 0) beam_ = find_beam();
        if (std::chrono::steady_clock::now() >= next_signal) {
          if (beam_ > 0) {
            ::kill(beam_, SIGTERM);
          } else {
            node_.signal(SIGTERM);  // beam.smp not there yet: the sh's trap forwards it
          }
          next_signal += std::chrono::seconds(1);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    kill();  // nothing left to do after a clean stop; else SIGKILL
    epmd_.terminate(10000);
  }

  // SIGKILL to the node (a broker that crashes; epmd stays, start() again): to beam.smp,
  // then the sh, then any process still carrying this node's environment (a VM the sh
  // had not yet started, erl_child_setup, inet_gethost). Idempotent.
  void kill() {
    if (node_.pid() > 0) {
      if (beam_ <= 0) beam_ = find_beam();
      if (beam_ > 0) ::kill(beam_, SIGKILL);
      node_.wait(beam_ > 0 ? 5000 : 0);  // the sh exits once beam.smp is gone, else SIGKILL
    }
    beam_ = -1;
    for (int round = 0; round < 500; ++round) {  // at most 5 s
      const std::vector<pid_t> left = node_processes();
      if (left.empty()) break;
      for (pid_t pid : left) ::kill(pid, SIGKILL);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  uint16_t port() const { return port_; }
  // The URL without the password (the project reads passwords from a file only).
  std::string url() const { return "amqp://guest@127.0.0.1:" + std::to_string(port_) + "/%2f"; }
  std::string password() const { return "guest"; }
  // The URL with the password, for amqp-tools and other clients.
  std::string url_with_password() const {
    return "amqp://guest:guest@127.0.0.1:" + std::to_string(port_) + "/%2f";
  }
  std::string error() const { return error_; }
  pid_t beam_pid() const { return beam_; }
  std::string log() const {
    std::ifstream in(log_path_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  // Runs an amqp-tools command against this node (`--url=` with the password is put
  // after the program name), e.g. {"amqp-declare-queue", "-d", "-q", "q1"}; its exit code
  // and output (stdout and stderr). Killed after `timeout_ms` (code -1000): amqp-consume
  // -c N waits for ever when fewer than N messages come. stdin is the test's: give
  // amqp-publish its body with -b.
  std::pair<int, std::string> amqp(std::vector<std::string> argv, int timeout_ms = 60000) {
    if (argv.empty()) return {-1, "no command"};
    if (argv[0].find('/') == std::string::npos) {
      const std::string path = find_program(argv[0]);
      if (path.empty()) return {-1, argv[0] + " not found: install amqp-tools"};
      argv[0] = path;
    }
    argv.insert(argv.begin() + 1, "--url=" + url_with_password());
    const auto log_path = dir_ / ("amqp-" + std::to_string(commands_++) + ".log");
    Process process;
    if (!process.start(argv, log_path)) return {-1, "fork failed"};
    const int code = process.wait(timeout_ms);
    std::string output = process.log();
    std::error_code ignored;
    std::filesystem::remove(log_path, ignored);
    return {code, output};
  }

#ifdef BALANCED_TESTING_HAVE_LIBRABBITMQ
  // Declares a durable topic `exchange` and a durable `queue` bound to it with `key`
  // ("#": every message). False when any step fails.
  bool declare_bound_queue(const std::string& queue, const std::string& exchange, const std::string& key) {
    amqp_connection_state_t connection = amqp_new_connection();
    amqp_socket_t* socket = amqp_tcp_socket_new(connection);
    timeval connect_timeout{5, 0};
    bool ok = socket != nullptr &&
              amqp_socket_open_noblock(socket, "127.0.0.1", port_, &connect_timeout) == AMQP_STATUS_OK &&
              amqp_login(connection, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest").reply_type ==
                  AMQP_RESPONSE_NORMAL;
    if (ok) {
      amqp_channel_open(connection, 1);
      ok = amqp_get_rpc_reply(connection).reply_type == AMQP_RESPONSE_NORMAL;
    }
    if (ok) {
      amqp_exchange_declare(connection, 1, amqp_cstring_bytes(exchange.c_str()), amqp_cstring_bytes("topic"), 0, 1,
                            0, 0, amqp_empty_table);
      ok = amqp_get_rpc_reply(connection).reply_type == AMQP_RESPONSE_NORMAL;
    }
    if (ok) {
      amqp_queue_declare(connection, 1, amqp_cstring_bytes(queue.c_str()), 0, 1, 0, 0, amqp_empty_table);
      ok = amqp_get_rpc_reply(connection).reply_type == AMQP_RESPONSE_NORMAL;
    }
    if (ok) {
      amqp_queue_bind(connection, 1, amqp_cstring_bytes(queue.c_str()), amqp_cstring_bytes(exchange.c_str()),
                      amqp_cstring_bytes(key.c_str()), amqp_empty_table);
      ok = amqp_get_rpc_reply(connection).reply_type == AMQP_RESPONSE_NORMAL;
    }
    amqp_destroy_connection(connection);
    return ok;
  }

  // Takes (basic.get, acknowledged) up to `count` messages from `queue`, waiting up to
  // `timeout_ms` for them to arrive; with their properties (message_id, type, ...), which
  // amqp-tools cannot show. Needs librabbitmq at link time (balanced_ledger brings it).
  std::vector<AmqpMessage> get(const std::string& queue, size_t count = 1, int timeout_ms = 10000) {
    std::vector<AmqpMessage> messages;
    amqp_connection_state_t connection = amqp_new_connection();
    amqp_socket_t* socket = amqp_tcp_socket_new(connection);
    timeval connect_timeout{5, 0};
    if (socket == nullptr ||
        amqp_socket_open_noblock(socket, "127.0.0.1", port_, &connect_timeout) != AMQP_STATUS_OK ||
        amqp_login(connection, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest")
                .reply_type != AMQP_RESPONSE_NORMAL) {
      amqp_destroy_connection(connection);
      return messages;
    }
    amqp_channel_open(connection, 1);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (messages.size() < count) {
      const amqp_rpc_reply_t reply =
          amqp_basic_get(connection, 1, amqp_cstring_bytes(queue.c_str()), 0);
      if (reply.reply_type != AMQP_RESPONSE_NORMAL) break;  // no such queue: the channel is closed
      if (reply.reply.id == AMQP_BASIC_GET_OK_METHOD) {
        const auto* ok = static_cast<amqp_basic_get_ok_t*>(reply.reply.decoded);
        AmqpMessage message;
        message.exchange = text(ok->exchange);
        message.routing_key = text(ok->routing_key);
        message.redelivered = ok->redelivered != 0;
        const uint64_t tag = ok->delivery_tag;
        amqp_message_t content;
        if (amqp_read_message(connection, 1, &content, 0).reply_type != AMQP_RESPONSE_NORMAL) break;
        const amqp_basic_properties_t& p = content.properties;
        message.body = text(content.body);
        if (p._flags & AMQP_BASIC_MESSAGE_ID_FLAG) message.message_id = text(p.message_id);
        if (p._flags & AMQP_BASIC_TYPE_FLAG) message.type = text(p.type);
        if (p._flags & AMQP_BASIC_CONTENT_TYPE_FLAG) message.content_type = text(p.content_type);
        if (p._flags & AMQP_BASIC_DELIVERY_MODE_FLAG) message.delivery_mode = p.delivery_mode;
        if (p._flags & AMQP_BASIC_HEADERS_FLAG) {
          for (int i = 0; i < p.headers.num_entries; ++i) {
            const amqp_table_entry_t& entry = p.headers.entries[i];
            if (entry.value.kind == AMQP_FIELD_KIND_UTF8 ||
                entry.value.kind == AMQP_FIELD_KIND_BYTES) {
              message.headers[text(entry.key)] = text(entry.value.value.bytes);
            }
          }
        }
        amqp_destroy_message(&content);
        amqp_basic_ack(connection, 1, tag, 0);
        messages.push_back(std::move(message));
      } else {  // get-empty
        if (std::chrono::steady_clock::now() > deadline) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      amqp_maybe_release_buffers(connection);
    }
    amqp_channel_close(connection, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(connection, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(connection);
    return messages;
  }
#endif  // BALANCED_TESTING_HAVE_LIBRABBITMQ

 private:
#ifdef BALANCED_TESTING_HAVE_LIBRABBITMQ
  static std::string text(amqp_bytes_t bytes) {
    return bytes.len == 0 ? std::string()
                          : std::string(static_cast<const char*>(bytes.bytes), bytes.len);
  }
#endif

  void write_file(const char* name, const std::string& content) const {
    std::ofstream out(dir_ / name, std::ios::trunc);
    out << content;
  }

  std::string log_tail() const {
    const std::string text = log();
    return text.size() > 6000 ? "..." + text.substr(text.size() - 6000) : text;
  }

  // /proc/PID/stat: "PID (COMM) STATE PPID ..."; false when gone or a zombie.
  static bool read_stat(pid_t pid, std::string& comm, pid_t& ppid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat;
    if (!std::getline(in, stat)) return false;
    const size_t open = stat.find('('), close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos) return false;
    comm = stat.substr(open + 1, close - open - 1);
    std::istringstream rest(stat.substr(close + 1));
    char state = 0;
    rest >> state >> ppid;
    return state != 'Z';
  }

  // Whether a live process has this node's environment (our RABBITMQ_MNESIA_BASE, set
  // only by us, for this node; inherited by everything the node's sh starts).
  bool has_our_environment(pid_t pid) const {
    std::ifstream in("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
    const std::string marker = "RABBITMQ_MNESIA_BASE=" + (dir_ / "mnesia").string();
    for (std::string entry; std::getline(in, entry, '\0');) {
      if (entry == marker) return true;
    }
    return false;
  }

  // The live processes (not zombies) for which `match(pid, comm, ppid)` holds.
  template <typename Match>
  static std::vector<pid_t> processes(Match match) {
    std::vector<pid_t> found;
    DIR* proc = ::opendir("/proc");
    if (proc == nullptr) return found;
    while (dirent* entry = ::readdir(proc)) {
      char* end = nullptr;
      const long number = std::strtol(entry->d_name, &end, 10);
      if (number <= 0 || *end != '\0' || number == ::getpid()) continue;
      const auto pid = static_cast<pid_t>(number);
      std::string comm;
      pid_t ppid = 0;
      if (read_stat(pid, comm, ppid) && match(pid, comm, ppid)) found.push_back(pid);
    }
    ::closedir(proc);
    return found;
  }

  // beam.smp, the child of the sh we forked; -1 while there is none yet.
  pid_t find_beam() const {
    const pid_t sh = node_.pid();
    if (sh <= 0) return -1;
    const auto found = processes([&](pid_t pid, const std::string& comm, pid_t ppid) {
      return ppid == sh && comm == "beam.smp" && has_our_environment(pid);
    });
    return found.empty() ? -1 : found.front();
  }

  // Every live process with this node's environment.
  std::vector<pid_t> node_processes() const {
    return processes(
        [&](pid_t pid, const std::string&, pid_t) { return has_our_environment(pid); });
  }

  std::filesystem::path dir_;
  std::filesystem::path log_path_;
  Process epmd_;
  Process node_;
  pid_t beam_ = -1;
  uint16_t port_ = 0;
  uint16_t dist_port_ = 0;
  uint16_t epmd_port_ = 0;
  int starts_ = 0;
  std::atomic<int> commands_{0};
  std::string error_;
};

}  // namespace balanced::testing
