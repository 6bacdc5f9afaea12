#include "auth/key_source.h"

#include <chrono>
#include <fstream>
#include <sstream>

#include "core/monotonic.h"
#include "observe/log.h"
#include "service/file_watch.h"

namespace balanced::auth {
namespace {

class FileLoader final : public JwksLoader {
 public:
  explicit FileLoader(std::string path) : path_(std::move(path)) {}
  bool changed() override {
    auto seen = service::file_stamp(path_);
    unchanged_ = seen && seen == seen_;
    if (!seen || seen == seen_) return false;  // unreadable: keep the keys we have
    seen_ = seen;
    return true;
  }
  Result<std::string> load() override {
    std::ifstream in(path_, std::ios::binary);
    if (!in) return Error{Code::unavailable, "cannot read " + path_};
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }
  void forget() override { seen_.reset(); }
  // What the last changed() saw: the file readable and as loaded (no second stat).
  bool still_current() override { return unchanged_; }
  std::string describe() const override { return path_; }

 private:
  const std::string path_;
  std::optional<service::FileStamp> seen_;
  bool unchanged_ = false;
};

}  // namespace

std::unique_ptr<JwksLoader> file_loader(std::string path) {
  return std::make_unique<FileLoader>(std::move(path));
}

KeySourceStats::KeySourceStats(observe::Registry& registry, const std::string& prefix)
    : reloads_ok(registry.counter(prefix + "_jwks_reloads_total", "JWKS loads, by result",
                                  {{"result", "ok"}})),
      reloads_failed(registry.counter(prefix + "_jwks_reloads_total", "JWKS loads, by result",
                                      {{"result", "error"}})),
      keys(registry.gauge(prefix + "_jwks_keys", "Verification keys in use")),
      last_success_unix_s(registry.gauge(prefix + "_jwks_last_success_timestamp_seconds",
                                         "Unix time of the last JWKS load that succeeded")) {}

KeySource::KeySource(KeySet keys) {
  snapshot_.keys = std::make_shared<const KeySet>(std::move(keys));
  snapshot_.generation = 1;
}

KeySource::KeySource(std::unique_ptr<JwksLoader> loader, KeySourceOptions options,
                     KeySourceStats* stats)
    : loader_(std::move(loader)), options_(options), stats_(stats) {}

Result<std::unique_ptr<KeySource>> KeySource::start(std::unique_ptr<JwksLoader> loader,
                                                    KeySourceOptions options,
                                                    KeySourceStats* stats) {
  std::unique_ptr<KeySource> source(new KeySource(std::move(loader), options, stats));
  source->loader_->changed();
  if (auto status = source->reload(); !status.ok()) return status.error();
  source->thread_ = std::thread([raw = source.get()] {
    observe::name_this_thread("jwks");
    raw->run();
  });
  return source;
}

KeySource::~KeySource() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

KeySource::Snapshot KeySource::current() const {
  std::lock_guard lock(mutex_);
  return snapshot_;
}

void KeySource::unknown_kid() {
  if (!options_.is_url) return;
  {
    std::lock_guard lock(mutex_);
    if (core::monotonic_ms() - last_fetch_ms_ < options_.min_refetch_ms) return;
    refetch_wanted_ = true;
  }
  wake_.notify_all();
}

Status KeySource::reload() {
  {
    std::lock_guard lock(mutex_);
    last_fetch_ms_ = core::monotonic_ms();
  }
  auto text = loader_->load();
  Result<KeySet> parsed = text.ok() ? KeySet::parse(text.value()) : Result<KeySet>(text.error());
  if (!parsed.ok()) {
    loader_->forget();
    if (stats_) stats_->reloads_failed.Increment();
    observe::log(observe::LogLevel::warn, "JWKS not loaded; keeping the keys in use",
                 {{"jwks.source", loader_->describe()}, {"error.message", parsed.error().detail}});
    return parsed.status();
  }
  const size_t count = parsed.value().size();
  {
    std::lock_guard lock(mutex_);
    snapshot_.keys = std::make_shared<const KeySet>(std::move(parsed.value()));
    ++snapshot_.generation;
  }
  if (stats_) {
    stats_->reloads_ok.Increment();
    stats_->keys.Set(static_cast<double>(count));
  }
  mark_current();
  observe::log(observe::LogLevel::info, "JWKS loaded",
               {{"jwks.source", loader_->describe()}, {"keys", std::to_string(count)}});
  return {};
}

void KeySource::run() {
  const int64_t interval_ms = options_.is_url ? options_.refresh_ms : options_.poll_ms;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, std::chrono::milliseconds(interval_ms),
                     [this] { return stopping_ || refetch_wanted_; });
      if (stopping_) return;
      refetch_wanted_ = false;
    }
    if (loader_->changed()) {
      (void)reload();
    } else if (loader_->still_current()) {
      mark_current();  // a file polled and found as loaded: its keys are current
    }
  }
}

void KeySource::mark_current() {
  if (!stats_) return;
  stats_->last_success_unix_s.Set(static_cast<double>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count()));
}

}  // namespace balanced::auth
