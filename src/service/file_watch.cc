#include "service/file_watch.h"

#include <sys/stat.h>

#include <cassert>
#include <chrono>

#include "observe/log.h"

namespace balanced::service {

std::optional<FileStamp> file_stamp(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return std::nullopt;
  return FileStamp{info.st_mtim.tv_sec, info.st_mtim.tv_nsec, info.st_size, info.st_ino};
}

FileWatch::FileWatch(std::vector<std::string> paths, int64_t poll_ms, std::string name,
                     std::function<void()> changed)
    : paths_(std::move(paths)), poll_ms_(poll_ms), name_(std::move(name)), changed_(std::move(changed)) {
  assert(poll_ms_ > 0);
  for (const auto& path : paths_) seen_.push_back(file_stamp(path));
  thread_ = std::thread([this] {
    observe::name_this_thread(name_);
    run();
  });
}

FileWatch::~FileWatch() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  stop_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void FileWatch::run() {
  std::unique_lock lock(mutex_);
  while (!stop_.wait_for(lock, std::chrono::milliseconds(poll_ms_), [this] { return stopping_; })) {
    bool any = false;
    for (size_t i = 0; i < paths_.size(); ++i) {
      auto now = file_stamp(paths_[i]);
      if (now && now != seen_[i]) {
        seen_[i] = now;
        any = true;
      }
    }
    if (any) {
      lock.unlock();
      changed_();
      lock.lock();
    }
  }
}

}  // namespace balanced::service
