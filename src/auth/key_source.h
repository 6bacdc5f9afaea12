// Where verification keys come from: a JWKS file (reread within a second of a change)
// or URL (refetched every refresh interval, and early when a token names an unknown kid,
// at most once per min-refetch interval). A "jwks" thread does the reading; verifiers
// take the current set without waiting. A set that fails to load or parse never replaces
// a good one: the old keys stay in use and the failure is logged and counted.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "auth/jwk.h"
#include "core/codes.h"
#include "observe/registry.h"

namespace balanced::auth {

// The I/O seam: what reads the JWKS text.
class JwksLoader {
 public:
  virtual ~JwksLoader() = default;
  // True when the JWKS may have changed since the last load() (a file's mtime, size or
  // inode; always true for a URL).
  virtual bool changed() = 0;
  virtual Result<std::string> load() = 0;
  // The last load() did not give a usable set: the next changed() must say true.
  virtual void forget() {}
  // After a changed() that said false: true when it found what the last successful load()
  // read still there, unchanged and readable (a file polled and found as loaded), so the
  // keys in use are current. A URL says false; its freshness is its last successful fetch.
  virtual bool still_current() { return false; }
  virtual std::string describe() const = 0;  // for logs
};

std::unique_ptr<JwksLoader> file_loader(std::string path);
// https:// (verified against the system CAs, plus `ca_file` when given), or http:// to a
// loopback host only.
Result<std::unique_ptr<JwksLoader>> url_loader(const std::string& url, const std::string& ca_file,
                                               int timeout_ms);

struct KeySourceOptions {
  int64_t poll_ms = 500;             // file: how often to look for a change
  int64_t refresh_ms = 300'000;      // URL: how often to refetch
  int64_t min_refetch_ms = 5'000;    // URL: unknown-kid refetches at most this often
  bool is_url = false;
};

struct KeySourceStats {
  KeySourceStats(observe::Registry& registry, const std::string& prefix);
  prometheus::Counter& reloads_ok;
  prometheus::Counter& reloads_failed;
  prometheus::Gauge& keys;
  prometheus::Gauge& last_success_unix_s;  // age = time() - this
};

class KeySource {
 public:
  struct Snapshot {
    std::shared_ptr<const KeySet> keys;
    uint64_t generation = 0;  // grows with each new set
  };

  // Loads once, synchronously: an error means there is no usable key set to start with.
  static Result<std::unique_ptr<KeySource>> start(std::unique_ptr<JwksLoader> loader,
                                                  KeySourceOptions options, KeySourceStats* stats);
  // A fixed set (tests, and balancectl).
  explicit KeySource(KeySet keys);
  ~KeySource();
  KeySource(const KeySource&) = delete;
  KeySource& operator=(const KeySource&) = delete;

  Snapshot current() const;
  // A token named a kid the set does not have: refetch soon, if a URL and allowed now.
  void unknown_kid();

 private:
  // The keys in use are known current (a load succeeded, or a polled file is unchanged):
  // the gauge jwks_last_success_timestamp_seconds says when.
  void mark_current();
  KeySource(std::unique_ptr<JwksLoader> loader, KeySourceOptions options, KeySourceStats* stats);
  Status reload();
  void run();

  std::unique_ptr<JwksLoader> loader_;
  const KeySourceOptions options_;
  KeySourceStats* stats_ = nullptr;
  mutable std::mutex mutex_;
  Snapshot snapshot_;            // guarded by mutex_
  bool stopping_ = false;        // guarded by mutex_
  bool refetch_wanted_ = false;  // guarded by mutex_
  int64_t last_fetch_ms_ = 0;    // guarded by mutex_
  std::condition_variable wake_;
  std::thread thread_;
};

}  // namespace balanced::auth
