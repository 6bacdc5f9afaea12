#include "storage/sqlite/commit_log.h"

#include "storage/sqlite/paced_vfs.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "observe/log.h"
#include "storage/sqlite/crc32c.h"

namespace balanced::storage {
namespace {

constexpr size_t header_bytes = 16;  // length, CRC, batch
constexpr std::string_view segment_suffix = ".log";
constexpr std::string_view prepared_suffix = ".zero";
// A prepared segment is written this much at a time, each step flushed, so that making one
// never queues more than this on the device ahead of a commit's fdatasync: the same bound
// as the materializer's (paced_vfs.h).
constexpr size_t prepare_step_bytes = 256u << 10;

void put_u32(char* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xffu);
}
void put_u64(char* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xffu);
}
uint32_t get_u32(const char* in) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}
uint64_t get_u64(const char* in) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

Status errno_status(const std::string& what) {
  return Status(Code::unavailable, what + ": " + std::strerror(errno));
}

// Makes a directory entry (a created or removed file) durable.
Status sync_directory(const std::string& directory) {
  const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_status("open " + directory);
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return errno_status("fsync " + directory);
  return {};
}

// The segment numbers in `directory`, ascending.
Result<std::vector<uint64_t>> list_segments(const std::string& directory) {
  std::vector<uint64_t> numbers;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(directory, ec)) {
    const std::string name = entry.path().filename().string();
    if (!name.ends_with(segment_suffix)) continue;
    const std::string digits = name.substr(0, name.size() - segment_suffix.size());
    if (digits.empty() || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    numbers.push_back(std::stoull(digits));
  }
  if (ec) return Error{Code::unavailable, "list " + directory + ": " + ec.message()};
  std::sort(numbers.begin(), numbers.end());
  return numbers;
}

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{Code::unavailable, "cannot read " + path};
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return Error{Code::unavailable, "cannot read " + path};
  return bytes;
}

}  // namespace

std::string commit_log_path(const std::string& ledger_path) { return ledger_path + ".commitlog"; }

CommitLog::~CommitLog() {
  {
    MutexLock lock(mutex_);
    stopping_ = true;
  }
  prepared_changed_.notify_all();
  if (preparer_.joinable()) preparer_.join();
  if (fd_ >= 0) ::close(fd_);
  MutexLock lock(mutex_);
  if (!prepared_path_.empty()) ::unlink(prepared_path_.c_str());
}

void CommitLog::run_preparer() {
  // Below the committer and the HTTP workers, like the materializer.
  ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10);
  uint64_t serial = 0;
  const std::string zeros(prepare_step_bytes, '\0');
  for (;;) {
    {
      MutexLock lock(mutex_);
      lock.wait(prepared_changed_, [&]() REQUIRES(mutex_) {
        return stopping_ || (prepared_path_.empty() && !preparing_failed_);
      });
      if (stopping_) return;
    }
    const std::string path = directory_ + "/" + std::to_string(++serial) + std::string(prepared_suffix);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    bool ok = fd >= 0;
    for (uint64_t written = 0; ok && written < segment_bytes_max_; written += zeros.size()) {
      {
        MutexLock lock(mutex_);
        if (stopping_) {
          ok = false;
          break;
        }
      }
      ok = ::write(fd, zeros.data(), zeros.size()) == static_cast<ssize_t>(zeros.size()) &&
           ::fdatasync(fd) == 0;
    }
    if (fd >= 0) ::close(fd);
    MutexLock lock(mutex_);
    if (ok) {
      prepared_path_ = path;
    } else {
      ::unlink(path.c_str());
      // Plain segments from now on (still correct, only slower to sync); not retried, so
      // a full disk is not written to over and over.
      if (!stopping_) preparing_failed_ = true;
    }
    prepared_changed_.notify_all();
  }
}

bool CommitLog::prepared_segment_ready() const {
  MutexLock lock(mutex_);
  return !prepared_path_.empty();
}

void CommitLog::wait_for_prepared_segment() {
  MutexLock lock(mutex_);
  lock.wait(prepared_changed_, [&]() REQUIRES(mutex_) {
    return !prepared_path_.empty() || preparing_failed_ || stopping_;
  });
}

std::string CommitLog::segment_path(uint64_t number) const {
  char name[32];
  std::snprintf(name, sizeof name, "%020llu", static_cast<unsigned long long>(number));
  return directory_ + "/" + name + std::string(segment_suffix);
}

Status CommitLog::open(const std::string& directory, bool durable, int64_t after_batch,
                       const Visit& visit, uint64_t segment_bytes_max, bool prepare_segments) {
  assert(fd_ < 0);
  directory_ = directory;
  durable_ = durable;
  segment_bytes_max_ = segment_bytes_max;
  std::error_code ec;
  if (!std::filesystem::is_directory(directory_, ec)) {
    if (!std::filesystem::create_directory(directory_, ec) || ec) {
      return Status(Code::unavailable, "cannot create " + directory_ + ": " + ec.message());
    }
    const auto parent = std::filesystem::path(directory_).parent_path();
    if (auto s = sync_directory(parent.empty() ? "." : parent.string()); !s.ok()) return s;
  }
  auto numbers = list_segments(directory_);
  if (!numbers.ok()) return numbers.status();
  std::vector<Segment> segments;
  int64_t last = 0;
  for (size_t i = 0; i < numbers.value().size(); ++i) {
    const uint64_t number = numbers.value()[i];
    const bool is_last = i + 1 == numbers.value().size();
    const std::string path = segment_path(number);
    auto bytes = read_file(path);
    if (!bytes.ok()) return bytes.status();
    const std::string_view data = bytes.value();
    Segment segment{number, 0};
    size_t at = 0;
    while (at < data.size()) {
      // The unused rest of a prepared segment.
      if (data.size() - at >= header_bytes &&
          data.substr(at, header_bytes).find_first_not_of('\0') == std::string_view::npos) {
        break;
      }
      bool valid = data.size() - at >= header_bytes;
      uint32_t length = 0;
      if (valid) {
        length = get_u32(data.data() + at);
        valid = length <= record_bytes_max && data.size() - at - header_bytes >= length;
      }
      if (valid) {
        const uint32_t crc = get_u32(data.data() + at + 4);
        valid = crc == crc32c(0, data.substr(at + 8, 8 + length));
      }
      if (!valid) {
        if (!is_last) {
          return Status(Code::internal, path + ": corrupt record at byte " + std::to_string(at) +
                                            " of a segment that is not the last");
        }
        // A write the crash tore: never acknowledged. Cut it off, so that appends go on
        // after the last whole record.
        if (::truncate(path.c_str(), static_cast<off_t>(at)) != 0) return errno_status("truncate " + path);
        break;
      }
      const auto batch = static_cast<int64_t>(get_u64(data.data() + at + 8));
      if (batch <= last) {
        return Status(Code::internal, path + ": batch " + std::to_string(batch) + " after batch " +
                                          std::to_string(last));
      }
      last = segment.last_batch = batch;
      if (batch > after_batch) {
        if (auto s = visit(batch, data.substr(at + header_bytes, length)); !s.ok()) return s;
      }
      at += header_bytes + length;
    }
    segments.push_back(segment);
  }
  {
    MutexLock lock(mutex_);
    segments_ = std::move(segments);
  }
  // Prepared segments a run before this one left unused.
  for (const auto& entry : std::filesystem::directory_iterator(directory_, ec)) {
    if (entry.path().extension() == prepared_suffix) std::filesystem::remove(entry.path(), ec);
  }
  if (prepare_segments) {
    preparer_ = std::thread([this] {
      observe::name_this_thread("log-prepare");
      run_preparer();
    });
  } else {
    MutexLock lock(mutex_);
    preparing_failed_ = true;  // none wanted
  }
  // Appends go to a fresh segment: the tail of an old one is never written again.
  const uint64_t next = numbers.value().empty() ? 1 : numbers.value().back() + 1;
  return start_segment(next);
}

Status CommitLog::start_segment(uint64_t number) {
  const std::string path = segment_path(number);
  std::string prepared;
  {
    MutexLock lock(mutex_);
    prepared = std::exchange(prepared_path_, std::string());
  }
  prepared_changed_.notify_all();  // the preparer makes the next one
  int fd = -1;
  bool is_prepared = false;
  if (!prepared.empty()) {
    if (::rename(prepared.c_str(), path.c_str()) == 0) {
      fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
      is_prepared = fd >= 0;
    } else {
      ::unlink(prepared.c_str());
    }
  }
  if (fd < 0) fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return errno_status("create " + path);
  if (auto s = sync_directory(directory_); !s.ok()) {
    ::close(fd);
    return s;
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  size_ = 0;
  current_prepared_ = is_prepared;
  MutexLock lock(mutex_);
  segments_.push_back(Segment{number, 0});
  return {};
}

Status CommitLog::append(int64_t batch, std::string_view payload) {
  if (broken_) return Status(Code::unavailable, "the commit log failed earlier; restart balanced");
  if (payload.size() > record_bytes_max) {
    return Status(Code::internal, "a batch of " + std::to_string(payload.size()) + " bytes exceeds the commit log's record bound");
  }
  // A new segment when the record would not fit, or to trade a plain segment for a
  // prepared one. A segment that cannot be started leaves appends in the current one.
  if (size_ > 0 && (size_ + header_bytes + payload.size() > segment_bytes_max_ ||
                    (!current_prepared_ && prepared_segment_ready()))) {
    uint64_t next = 0;
    {
      MutexLock lock(mutex_);
      next = segments_.back().number + 1;
    }
    (void)start_segment(next);
  }
  // The header, then the payload where it is (no copy): the CRC covers the batch number
  // and the payload.
  char header[header_bytes];
  put_u32(header, static_cast<uint32_t>(payload.size()));
  put_u64(header + 8, static_cast<uint64_t>(batch));
  put_u32(header + 4, crc32c(crc32c(0, std::string_view(header + 8, 8)), payload));
  const size_t record_bytes = header_bytes + payload.size();
  size_t written = 0;
  while (written < record_bytes) {
    iovec pieces[2];
    int count = 0;
    if (written < header_bytes) {
      pieces[count++] = {header + written, header_bytes - written};
      pieces[count++] = {const_cast<char*>(payload.data()), payload.size()};
    } else {
      const size_t from = written - header_bytes;
      pieces[count++] = {const_cast<char*>(payload.data()) + from, payload.size() - from};
    }
    const ssize_t n = ::pwritev(fd_, pieces, count, static_cast<off_t>(size_ + written));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      broken_ = true;
      return errno_status("append to the commit log");
    }
    written += static_cast<size_t>(n);
  }
  if (durable_) {
    const sqlite::CommitSyncMark mark;  // the materializer's pacing waits while this is near
    if (::fdatasync(fd_) != 0) {
      broken_ = true;
      return errno_status("fdatasync the commit log");
    }
  }
  size_ += record_bytes;
  {
    MutexLock lock(mutex_);
    segments_.back().last_batch = batch;
  }
  return {};
}

int64_t CommitLog::last_batch() const {
  MutexLock lock(mutex_);
  for (auto it = segments_.rbegin(); it != segments_.rend(); ++it) {
    if (it->last_batch > 0) return it->last_batch;
  }
  return 0;
}

Status CommitLog::release_through(int64_t batch) {
  std::vector<uint64_t> released;
  {
    MutexLock lock(mutex_);
    // Never the last segment (being appended to), nor one after a segment still needed.
    while (segments_.size() > 1 && segments_.front().last_batch <= batch) {
      released.push_back(segments_.front().number);
      segments_.erase(segments_.begin());
    }
  }
  if (released.empty()) return {};
  for (const uint64_t number : released) {
    const std::string path = segment_path(number);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return errno_status("unlink " + path);
  }
  return sync_directory(directory_);
}

Status CommitLog::copy(const std::string& from, const std::string& to) {
  std::error_code ec;
  if (!std::filesystem::create_directory(to, ec) || ec) {
    return Status(Code::unavailable, "cannot create " + to + ": " + ec.message());
  }
  if (!std::filesystem::is_directory(from, ec)) return {};  // no log: nothing pending
  auto numbers = list_segments(from);
  if (!numbers.ok()) return numbers.status();
  for (const uint64_t number : numbers.value()) {
    char name[32];
    std::snprintf(name, sizeof name, "%020llu", static_cast<unsigned long long>(number));
    const std::string file = name + std::string(segment_suffix);
    auto bytes = read_file(from + "/" + file);
    if (!bytes.ok()) {
      if (!std::filesystem::exists(from + "/" + file)) continue;  // released meanwhile
      return bytes.status();
    }
    std::ofstream out(to + "/" + file, std::ios::binary);
    out.write(bytes.value().data(), static_cast<std::streamsize>(bytes.value().size()));
    out.close();
    if (!out) return Status(Code::unavailable, "cannot write " + to + "/" + file);
  }
  return {};
}

void CommitLog::remove(const std::string& directory) {
  std::error_code ignored;
  std::filesystem::remove_all(directory, ignored);
}

}  // namespace balanced::storage
