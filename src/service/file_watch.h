// Noticing that files changed: a Kubernetes Secret volume swaps its files in place (a
// symlink flip), and nothing sends the process a signal, so a file it serves from (the
// gateway's TLS certificate and key) is watched by polling.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace balanced::service {

// What stat(2) says of a file's content: modification time, size, inode. Equal stamps
// mean the file was not changed or replaced in between (as far as stat can tell).
using FileStamp = std::tuple<int64_t, int64_t, int64_t, uint64_t>;
// The file's stamp, or nothing when it cannot be stat'ed (the caller keeps what it has).
std::optional<FileStamp> file_stamp(const std::string& path);

// Calls `changed` on a thread of its own (`name`) whenever any of `paths` has a new stamp,
// looking every `poll_ms`. A file that cannot be stat'ed counts as unchanged.
class FileWatch {
 public:
  FileWatch(std::vector<std::string> paths, int64_t poll_ms, std::string name,
            std::function<void()> changed);
  ~FileWatch();  // stops and joins the thread
  FileWatch(const FileWatch&) = delete;
  FileWatch& operator=(const FileWatch&) = delete;

 private:
  void run();

  const std::vector<std::string> paths_;
  const int64_t poll_ms_;
  const std::string name_;
  const std::function<void()> changed_;
  std::vector<std::optional<FileStamp>> seen_;  // touched only on the thread
  std::mutex mutex_;
  std::condition_variable stop_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace balanced::service
