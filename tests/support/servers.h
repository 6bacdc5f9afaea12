// Real database and cache servers for tests: MariaDB with a temporary datadir, Redis,
// and a 3-master Redis Cluster (either plain or over TLS with an ACL user), each on
// 127.0.0.1 and free ports, stopped by pid.
// A server that cannot start is a test failure (start() returns false with the reason
// in error()), never a skip.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "support/process.h"

namespace balanced::testing {

// A port nobody listens on right now (the kernel's choice for port 0).
inline uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

// A free port whose neighbour port + 10000 is free too (a Redis Cluster node listens on
// both: clients on the first, the cluster bus on the second).
inline uint16_t free_cluster_port() {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const uint16_t port = free_port();
    if (port > 55535) continue;
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<uint16_t>(port + 10000));
    const bool bus_free = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
    ::close(fd);
    if (bus_free) return port;
  }
  return 0;
}

inline bool port_open(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  const bool open = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  ::close(fd);
  return open;
}

// The absolute path of a program on PATH or in the sbin directories; empty if absent.
inline std::string find_program(const std::string& name) {
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
  path += ":/usr/sbin:/sbin:/usr/local/sbin";
  size_t start = 0;
  while (start <= path.size()) {
    const size_t end = std::min(path.find(':', start), path.size());
    const std::filesystem::path candidate = std::filesystem::path(path.substr(start, end - start)) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    start = end + 1;
  }
  return {};
}

// Waits until `ready()` or the process exits or the timeout passes.
template <typename Ready>
bool wait_until(Process& process, int timeout_ms, Ready ready) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (ready()) return true;
    if (!process.running()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// TLS for a test mariadbd: its certificate, key and CA, and the loopback addresses it
// listens on (a certificate can then name one and not another).
struct MariaDbTls {
  std::filesystem::path certificate;
  std::filesystem::path key;
  std::filesystem::path ca;
  std::string bind_addresses = "127.0.0.1";
};

// mariadbd on a fresh datadir. The user `balanced` (password `secret`) may do anything.
class MariaDb {
 public:
  explicit MariaDb(std::filesystem::path dir, std::optional<MariaDbTls> tls = std::nullopt)
      : dir_(std::move(dir)), tls_(std::move(tls)) {}
  ~MariaDb() { process_.terminate(60000); }

  bool start() {
    std::filesystem::create_directories(dir_);
    const std::string install = find_program("mariadb-install-db");
    if (find_program("mariadbd").empty() || install.empty()) {
      error_ = "mariadbd or mariadb-install-db not found: run scripts/install-deps.sh test";
      return false;
    }
    // Temporary tables go to a directory of this server's own, not the shared /tmp: a
    // starting mariadbd deletes every #sql* file in its tmpdir (leftovers of a crash, as
    // it sees them), so under ctest -j one test's server start broke another's install
    // ("Error on delete of '/tmp/#sql-temptable-...'").
    std::filesystem::create_directories(dir_ / "tmp");
    if (!std::filesystem::exists(dir_ / "data")) {
      auto [code, output] = run_command(
          {install, "--no-defaults", "--datadir=" + (dir_ / "data").string(), "--tmpdir=" + (dir_ / "tmp").string(),
           "--user=root", "--auth-root-authentication-method=normal", "--skip-test-db"},
          dir_ / "install.log");
      if (code != 0) {
        error_ = "mariadb-install-db failed: " + output;
        return false;
      }
    }
    if (port_ == 0) port_ = free_port();
    if (!launch()) return false;
    auto [code, output] = sql(
        "CREATE USER IF NOT EXISTS 'balanced'@'127.0.0.1' IDENTIFIED BY 'secret';"
        "GRANT ALL ON *.* TO 'balanced'@'127.0.0.1';");
    if (code != 0) {
      error_ = "cannot create the test user: " + output;
      return false;
    }
    return true;
  }

  // More mariadbd options (replication, semi-sync), for the next start.
  void set_options(std::vector<std::string> options) { options_ = std::move(options); }

  // Stops (SIGTERM, a clean shutdown) and starts again on the same datadir and port.
  bool restart() {
    process_.terminate(60000);
    return launch();
  }
  int stop() { return process_.terminate(60000); }
  void kill() { process_.kill_hard(); }

  // Runs SQL as root through the command-line client.
  std::pair<int, std::string> sql(const std::string& statements) {
    return run_command({find_program("mariadb"), "--no-defaults", "-h127.0.0.1",
                        "-P" + std::to_string(port_), "-uroot", "-e", statements},
                       dir_ / "sql.log");
  }
  // Runs one query as root; its first value, trimmed (empty on an error or no row).
  std::string value(const std::string& query) {
    auto [code, output] = run_command({find_program("mariadb"), "--no-defaults", "-h127.0.0.1",
                                       "-P" + std::to_string(port_), "-uroot", "-N", "-B", "-e", query},
                                      dir_ / "value.log");
    if (code != 0) return {};
    while (!output.empty() && (output.back() == '\n' || output.back() == '\r')) output.pop_back();
    return output.substr(0, output.find_first_of("\t\n"));
  }
  bool create_database(const std::string& name) {
    return sql("CREATE DATABASE `" + name + "` CHARACTER SET utf8mb4").first == 0;
  }
  std::string url(const std::string& database) const {
    return "mysql://balanced:secret@127.0.0.1:" + std::to_string(port_) + "/" + database;
  }
  uint16_t port() const { return port_; }
  const std::string& error() const { return error_; }
  Process& process() { return process_; }

 private:
  bool launch() {
    const auto log = dir_ / "mariadbd.log";
    std::vector<std::string> argv{find_program("mariadbd"), "--no-defaults",
                                  "--datadir=" + (dir_ / "data").string(), "--tmpdir=" + (dir_ / "tmp").string(),
                                  "--user=root",
                                  "--bind-address=" + (tls_ ? tls_->bind_addresses : std::string("127.0.0.1")),
                                  "--port=" + std::to_string(port_),
                                  "--socket=" + (dir_ / "mysqld.sock").string(),
                                  "--pid-file=" + (dir_ / "mysqld.pid").string(), "--skip-name-resolve",
                                  "--innodb-buffer-pool-size=256M", "--innodb-log-file-size=256M",
                                  "--max-connections=1000", "--max-allowed-packet=64M"};
    if (tls_) {
      argv.insert(argv.end(), {"--ssl-cert=" + tls_->certificate.string(), "--ssl-key=" + tls_->key.string(),
                               "--ssl-ca=" + tls_->ca.string()});
    }
    argv.insert(argv.end(), options_.begin(), options_.end());
    if (!process_.start(argv, log)) {
      error_ = "fork failed";
      return false;
    }
    if (!wait_until(process_, 60000, [&] { return port_open(port_); })) {
      error_ = "mariadbd did not start: " + process_.log();
      return false;
    }
    return true;
  }

  std::filesystem::path dir_;
  std::optional<MariaDbTls> tls_;
  std::vector<std::string> options_;
  Process process_;
  uint16_t port_ = 0;
  std::string error_;
};

// How a test Redis is secured: TLS only (no plain port; with a cluster, the bus too) with
// the given certificate, and an ACL user that may do anything while `default` is off.
struct RedisSecurity {
  std::filesystem::path certificate;  // empty: plain TCP
  std::filesystem::path key;
  std::filesystem::path ca;
  std::string user;  // empty: no ACL (the default user, no password)
  std::string password;
  bool tls() const { return !certificate.empty(); }
};

// One redis-server; with `cluster`, a cluster-enabled node (not yet joined).
class Redis {
 public:
  Redis(std::filesystem::path dir, bool cluster, RedisSecurity security = {})
      : dir_(std::move(dir)), cluster_(cluster), security_(std::move(security)) {}
  ~Redis() { process_.terminate(20000); }

  bool start() {
    const std::string server = find_program("redis-server");
    if (server.empty()) {
      error_ = "redis-server not found: run scripts/install-deps.sh test";
      return false;
    }
    std::filesystem::create_directories(dir_);
    if (port_ == 0) port_ = cluster_ ? free_cluster_port() : free_port();
    std::vector<std::string> argv{server, "--bind", "127.0.0.1", "--dir", dir_.string(), "--save", "",
                                  "--appendonly", "no", "--protected-mode", "no"};
    if (security_.tls()) {
      argv.insert(argv.end(), {"--port", "0", "--tls-port", std::to_string(port_), "--tls-cert-file",
                               security_.certificate.string(), "--tls-key-file", security_.key.string(),
                               "--tls-ca-cert-file", security_.ca.string(), "--tls-auth-clients", "no"});
      if (cluster_) argv.insert(argv.end(), {"--tls-cluster", "yes", "--tls-replication", "yes"});
    } else {
      argv.insert(argv.end(), {"--port", std::to_string(port_)});
    }
    if (!security_.user.empty()) {
      argv.insert(argv.end(), {"--user", "default", "off", "--user", security_.user, "on",
                               ">" + security_.password, "~*", "&*", "+@all"});
    }
    if (cluster_) {
      argv.insert(argv.end(), {"--cluster-enabled", "yes", "--cluster-config-file",
                               (dir_ / "nodes.conf").string(), "--cluster-node-timeout", "2000",
                               "--cluster-require-full-coverage", "no"});
    }
    if (!process_.start(argv, dir_ / "redis.log")) {
      error_ = "fork failed";
      return false;
    }
    if (!wait_until(process_, 20000, [&] { return port_open(port_); })) {
      error_ = "redis-server did not start: " + process_.log();
      return false;
    }
    return true;
  }
  void kill() { process_.kill_hard(); }
  int stop() { return process_.terminate(20000); }
  Process& process() { return process_; }
  std::pair<int, std::string> cli(std::vector<std::string> args) {
    std::vector<std::string> argv{find_program("redis-cli"), "-h", "127.0.0.1", "-p",
                                  std::to_string(port_)};
    if (security_.tls()) argv.insert(argv.end(), {"--tls", "--cacert", security_.ca.string()});
    if (!security_.user.empty()) {
      argv.insert(argv.end(), {"--user", security_.user, "--pass", security_.password, "--no-auth-warning"});
    }
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, dir_ / "cli.log");
  }
  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::string& error() const { return error_; }
  const RedisSecurity& security() const { return security_; }
  // The password redis-cli authenticates with, after a test changed it at the server.
  void set_password(std::string password) { security_.password = std::move(password); }

 private:
  std::filesystem::path dir_;
  bool cluster_;
  RedisSecurity security_;
  Process process_;
  uint16_t port_ = 0;
  std::string error_;
};

// Three cluster-enabled masters, slots spread evenly, each with `replicas_per_master`
// replicas (the first three nodes are the masters).
class RedisCluster {
 public:
  explicit RedisCluster(std::filesystem::path dir, RedisSecurity security = {}, int replicas_per_master = 0)
      : dir_(std::move(dir)), security_(std::move(security)), replicas_per_master_(replicas_per_master) {}

  bool start() {
    for (int i = 0; i < 3 * (1 + replicas_per_master_); ++i) {
      nodes_.push_back(std::make_unique<Redis>(dir_ / ("node" + std::to_string(i)), true, security_));
      if (!nodes_.back()->start()) {
        error_ = nodes_.back()->error();
        return false;
      }
    }
    std::vector<std::string> args{"--cluster", "create"};
    for (auto& node : nodes_) args.push_back(node->address());
    args.insert(args.end(), {"--cluster-replicas", std::to_string(replicas_per_master_), "--cluster-yes"});
    auto [code, output] = nodes_[0]->cli(args);
    if (code != 0) {
      error_ = "redis-cli --cluster create failed: " + output;
      return false;
    }
    // Every node must agree before the cluster serves every slot, and know every replica
    // (the replicas are assigned after the slots, and the news travels by gossip).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      bool ok = true;
      for (auto& node : nodes_) {
        ok = ok && node->cli({"cluster", "info"}).second.find("cluster_state:ok") != std::string::npos;
        if (ok && replicas_per_master_ > 0) {
          std::istringstream table(node->cli({"cluster", "nodes"}).second);
          int replicas = 0;
          for (std::string line; std::getline(table, line);) {
            std::istringstream fields(line);
            std::string id, address, flags;
            fields >> id >> address >> flags;
            replicas += flags.find("slave") != std::string::npos ? 1 : 0;
          }
          ok = replicas == 3 * replicas_per_master_;
        }
      }
      if (ok) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    error_ = "the cluster did not reach cluster_state:ok";
    return false;
  }

  // "redis-cluster://h1:p1,h2:p2,h3:p3", or "rediss-cluster://user:password@h1:p1,..."
  std::string url() const {
    std::string url = security_.tls() ? "rediss-cluster://" : "redis-cluster://";
    if (!security_.user.empty()) url += security_.user + ":" + security_.password + "@";
    for (size_t i = 0; i < nodes_.size(); ++i) url += (i ? "," : "") + nodes_[i]->address();
    return url;
  }
  Redis& node(size_t i) { return *nodes_[i]; }
  size_t size() const { return nodes_.size(); }
  const std::string& error() const { return error_; }

 private:
  std::filesystem::path dir_;
  RedisSecurity security_;
  int replicas_per_master_ = 0;
  std::vector<std::unique_ptr<Redis>> nodes_;
  std::string error_;
};

}  // namespace balanced::testing
