// Starting and stopping the real binaries from tests: a child process with its stdout
// captured to a file, stopped by pid (SIGTERM or SIGKILL), never by name.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace balanced::testing {

// A fresh temporary directory, removed at destruction.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "balanced-test-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

class Process {
 public:
  Process() = default;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process() { kill_hard(); }

  // Starts `argv` with stdout and stderr appended to `log_path`.
  bool start(const std::vector<std::string>& argv, const std::filesystem::path& log_path) {
    log_path_ = log_path;
    pid_ = ::fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      FILE* log = std::fopen(log_path.c_str(), "a");
      if (log != nullptr) {
        ::dup2(fileno(log), 1);
        ::dup2(fileno(log), 2);
      }
      std::vector<char*> args;
      for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      std::_Exit(127);
    }
    return true;
  }

  // Sends SIGTERM and waits; returns the exit code (or -signal).
  int terminate(int wait_ms = 20000) {
    if (pid_ <= 0) return exit_code_;
    ::kill(pid_, SIGTERM);
    ::kill(pid_, SIGCONT);  // a paused process takes its SIGTERM only once running
    return wait(wait_ms);
  }

  // Sends `number` and goes on (terminate() waits).
  void signal(int number) {
    if (pid_ > 0) ::kill(pid_, number);
  }

  // SIGSTOP and SIGCONT: a process that holds its sockets open and answers nothing.
  void pause() { signal(SIGSTOP); }
  void resume() { signal(SIGCONT); }

  void kill_hard() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    wait(20000);
  }

  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      record(status);
      return false;
    }
    return true;
  }

  int wait(int wait_ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
    while (pid_ > 0) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        record(status);
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        record(status);
        exit_code_ = -1000;  // did not stop in time
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return exit_code_;
  }

  std::string log() const {
    std::ifstream in(log_path_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  pid_t pid() const { return pid_; }

 private:
  void record(int status) {
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    pid_ = -1;
  }
  pid_t pid_ = -1;
  int exit_code_ = 0;
  std::filesystem::path log_path_;
};

// Runs a command to completion; returns its exit code and output.
inline std::pair<int, std::string> run_command(const std::vector<std::string>& argv,
                                               const std::filesystem::path& log_path) {
  Process process;
  std::error_code ignored;
  std::filesystem::remove(log_path, ignored);
  if (!process.start(argv, log_path)) return {-1, "fork failed"};
  const int code = process.wait(600000);
  return {code, process.log()};
}

#ifdef BALANCECTL_BINARY
// Runs `balancectl verify` on `db` until the audit chain is sealed (the singleton job has
// chained every record: "awaiting the chain: 0") or 30 s pass; the last run's exit code
// and output.
inline std::pair<int, std::string> verify_when_sealed(const std::string& db, const std::filesystem::path& dir) {
  std::pair<int, std::string> last{-1, ""};
  for (int attempt = 0; attempt < 60; ++attempt) {
    last = run_command({BALANCECTL_BINARY, "verify", "--db", db}, dir / "verify.log");
    if (last.second.find("awaiting the chain: 0\n") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return last;
}
#endif  // BALANCECTL_BINARY

#ifdef BALANCED_BINARY
// `balanced` on a SQLite file in `dir`, on a free port.
class BalancedServer {
 public:
  BalancedServer(std::filesystem::path dir, std::vector<std::string> extra = {})
      : dir_(std::move(dir)), extra_(std::move(extra)) {}

  std::string db() const { return db_.empty() ? "sqlite:" + (dir_ / "ledger.db").string() : db_; }
  // Serve another database (mysql://...) instead of a SQLite file in `dir`.
  void set_db(std::string url) { db_ = std::move(url); }
  // Listen on another address than 127.0.0.1:0 (another loopback address, a fixed port).
  void set_listen(std::string address) { listen_ = std::move(address); }

  // Starts and waits for the "balanced serving" log line; false when it does not come.
  bool start() {
    const auto log_path = dir_ / ("balanced-" + std::to_string(starts_++) + ".log");
    std::vector<std::string> argv{BALANCED_BINARY, "--listen", listen_, "--db", db(), "--log-level", "info"};
    argv.insert(argv.end(), extra_.begin(), extra_.end());
    if (!process_.start(argv, log_path)) return false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      const std::string text = process_.log();
      const size_t at = text.find("\"listen\":\"");
      const size_t end = at == std::string::npos ? at : text.find('"', at + 10);
      if (end != std::string::npos) {
        const std::string address = text.substr(at + 10, end - at - 10);  // host:port
        port_ = static_cast<uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
        return true;
      }
      if (!process_.running()) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  uint16_t port() const { return port_; }
  Process& process() { return process_; }
  std::string log() const { return process_.log(); }

 private:
  std::filesystem::path dir_;
  std::vector<std::string> extra_;
  std::string db_;
  std::string listen_ = "127.0.0.1:0";
  Process process_;
  uint16_t port_ = 0;
  int starts_ = 0;
};
#endif  // BALANCED_BINARY

}  // namespace balanced::testing
