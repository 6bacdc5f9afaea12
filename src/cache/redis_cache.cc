#include "cache/redis_cache.h"

#include <charconv>
#include <chrono>

#include "observe/log.h"
#include "redis/script.h"

namespace balanced::cache {

namespace {

// KEYS[1] the entry; ARGV[1] the new version (decimal), ARGV[2] the value, ARGV[3] TTL ms.
// Versions are compared as decimal strings (length, then bytes): exact for any int64,
// where Lua's numbers would round above 2^53.
constexpr std::string_view kPutIfNewer = R"lua(
local current = redis.call('GET', KEYS[1])
if current then
  local v = string.match(current, '^(%d+)|')
  local n = ARGV[1]
  if v and (#v > #n or (#v == #n and v >= n)) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
)lua";

const redis::Script& put_script() {
  static const redis::Script script(kPutIfNewer);
  return script;
}

bool parse_field(std::string_view& rest, int64_t& out) {
  const size_t bar = rest.find('|');
  const std::string_view field = rest.substr(0, bar);
  auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), out);
  if (ec != std::errc{} || end != field.data() + field.size()) return false;
  rest = bar == std::string_view::npos ? std::string_view() : rest.substr(bar + 1);
  return true;
}

}  // namespace

RedisCache::RedisCache(redis::Client& client, RedisCacheOptions options)
    : client_(client), options_(std::move(options)), pipeline_(client, options_.pipeline) {
  retrier_ = std::thread([this] { retry_unsettled(); });
}

RedisCache::~RedisCache() { stop_retrying(); }

bool RedisCache::is_unsettled(std::string_view number) const {
  if (unsettled_count_.load(std::memory_order_acquire) == 0) return false;
  MutexLock lock(unsettled_mutex_);
  return unsettled_.contains(std::string(number));
}

void RedisCache::retry_unsettled() {
  observe::name_this_thread("cache-retry");
  const auto interval = std::chrono::milliseconds(options_.retry_interval_ms);
  for (;;) {
    std::vector<core::Account> snapshots;
    {
      MutexLock lock(unsettled_mutex_);
      if (lock.wait_for(unsettled_wake_, interval, [&]() REQUIRES(unsettled_mutex_) { return stopping_; })) return;
      snapshots.reserve(unsettled_.size());  // never more than unsettled_accounts_max
      for (const auto& [number, account] : unsettled_) snapshots.push_back(account);
    }
    // On this thread, not the pipeline's: a retry never takes a place in its queue.
    if (!snapshots.empty()) put_many_if_newer(snapshots);
  }
}

void RedisCache::stop_retrying() {
  {
    MutexLock lock(unsettled_mutex_);
    stopping_ = true;
  }
  unsettled_wake_.notify_all();
  if (retrier_.joinable()) retrier_.join();
}

// version|balance|overdraft_limit|currency|created_at|updated_at|type|status|
// pending_debits|pending_credits|metadata: metadata last, as it may hold '|'.
std::string RedisCache::encode(const core::Account& a) {
  return std::to_string(a.version) + "|" + std::to_string(a.balance) + "|" +
         std::to_string(a.overdraft_limit) + "|" + a.currency + "|" +
         std::to_string(a.created_at_ms) + "|" + std::to_string(a.updated_at_ms) + "|" +
         std::string(core::account_type_name(a.type)) + "|" + std::string(core::account_status_name(a.status)) +
         "|" + std::to_string(a.pending_debits) + "|" + std::to_string(a.pending_credits) + "|" + a.metadata;
}

std::optional<core::Account> RedisCache::decode(std::string_view number, std::string_view value) {
  core::Account a;
  a.number = std::string(number);
  if (!parse_field(value, a.version) || !parse_field(value, a.balance) ||
      !parse_field(value, a.overdraft_limit)) {
    return std::nullopt;
  }
  auto text_field = [&value]() -> std::optional<std::string_view> {
    const size_t bar = value.find('|');
    if (bar == std::string_view::npos) return std::nullopt;
    const std::string_view field = value.substr(0, bar);
    value = value.substr(bar + 1);
    return field;
  };
  const auto currency = text_field();
  if (!currency) return std::nullopt;
  a.currency = std::string(*currency);
  if (!parse_field(value, a.created_at_ms) || !parse_field(value, a.updated_at_ms)) {
    return std::nullopt;
  }
  const auto type = text_field();
  const auto status = text_field();
  if (!type || !status) return std::nullopt;
  const auto parsed_type = core::account_type_from_name(*type);
  const auto parsed_status = core::account_status_from_name(*status);
  if (!parsed_type || !parsed_status || !parse_field(value, a.pending_debits)) return std::nullopt;
  a.type = *parsed_type;
  a.status = *parsed_status;
  // pending_credits, then the rest is the metadata.
  const size_t bar = value.find('|');
  if (bar == std::string_view::npos) return std::nullopt;
  std::string_view credits = value.substr(0, bar);
  if (!parse_field(credits, a.pending_credits)) return std::nullopt;
  a.metadata = std::string(value.substr(bar + 1));
  return a;
}

std::optional<core::Account> RedisCache::get(std::string_view number) {
  if (is_unsettled(number)) {  // the entry may be older than the database
    ++misses_;
    return std::nullopt;
  }
  const std::string k = key(number);
  return read(number, client_.run(k, {"GET", k}));
}

std::optional<core::Account> RedisCache::read(std::string_view number,
                                              const Result<redis::Reply>& reply) {
  if (!reply.ok() || reply.value().is_error()) {
    ++errors_;
    ++misses_;
    return std::nullopt;
  }
  if (reply.value().type == redis::Reply::Type::string) {
    if (auto account = decode(number, reply.value().text)) {
      ++hits_;
      return account;
    }
    ++errors_;  // not ours: treat as a miss, the next write replaces it
  }
  ++misses_;
  return std::nullopt;
}

void RedisCache::get_async(std::string_view number, GetDone done) {
  if (is_unsettled(number)) {  // the entry may be older than the database
    ++misses_;
    return done(std::nullopt);
  }
  std::string k = key(number);
  redis::Pipeline::Commands commands;
  commands.push_back({k, {"GET", k}});
  redis::Pipeline::Done on_reply = [this, number = std::string(number), done = std::move(done)](
                                       redis::Pipeline::Commands&&,
                                       std::vector<Result<redis::Reply>>&& replies) {
    done(read(number, replies.front()));
  };
  if (!pipeline_.submit(commands, on_reply)) {  // a miss, now
    std::vector<Result<redis::Reply>> refused;
    refused.emplace_back(Error{Code::unavailable, "the redis-io queue is full"});
    on_reply(std::move(commands), std::move(refused));
  }
}

void RedisCache::put_if_newer(const core::Account& account) {
  put_many_if_newer(std::span(&account, 1));
}

redis::Pipeline::Commands RedisCache::put_commands(std::span<const core::Account> accounts) const {
  const std::string ttl = std::to_string(options_.ttl_ms);
  redis::Pipeline::Commands commands;
  commands.reserve(accounts.size());
  for (const auto& account : accounts) {
    std::string k = key(account.number);
    redis::Command command = put_script().call(k, {std::to_string(account.version), encode(account), ttl});
    commands.push_back({std::move(k), std::move(command)});
  }
  return commands;
}

void RedisCache::count_puts(std::span<const core::Account> accounts, const redis::Pipeline::Commands& commands,
                            std::vector<Result<redis::Reply>>& results) {
  bool any_failed = false;
  for (size_t i = 0; i < results.size(); ++i) {
    auto& result = results[i];
    if (redis::Script::missing(result)) {  // first use on this node: this loads it
      result = client_.run(commands[i].first, put_script().whole(commands[i].second));
    }
    if (!result.ok() || result.value().is_error()) {
      ++errors_;
      any_failed = true;
    } else if (result.value().integer == 0) {
      ++stale_;  // the entry holds this version or a newer one: landed all the same
    }
  }
  if (!any_failed && unsettled_count_.load(std::memory_order_acquire) == 0) return;
  MutexLock lock(unsettled_mutex_);
  for (size_t i = 0; i < results.size(); ++i) {
    const core::Account& account = accounts[i];
    const bool landed = results[i].ok() && !results[i].value().is_error();
    auto it = unsettled_.find(account.number);
    if (landed) {
      if (it != unsettled_.end() && it->second.version <= account.version) unsettled_.erase(it);
    } else if (it != unsettled_.end()) {
      if (it->second.version < account.version) it->second = account;
    } else if (unsettled_.size() < options_.unsettled_accounts_max) {
      unsettled_.emplace(account.number, account);
    } else if (unsettled_dropped_.fetch_add(1) == 0) {
      observe::log(observe::LogLevel::warn,
                   "too many accounts wait for their cache write to be retried; the entries of further "
                   "ones may stay older than the database until their TTL",
                   {{"unsettled", std::to_string(unsettled_.size())}});
    }
  }
  unsettled_count_.store(unsettled_.size(), std::memory_order_release);
}

void RedisCache::put_many_if_newer(std::span<const core::Account> accounts) {
  if (accounts.empty()) return;
  const auto commands = put_commands(accounts);
  auto results = client_.run_many(commands);
  count_puts(accounts, commands, results);
}

void RedisCache::put_many_async(std::vector<core::Account> accounts, PutDone done) {
  if (accounts.empty()) return done();
  auto commands = put_commands(accounts);
  redis::Pipeline::Done on_replies = [this, accounts = std::move(accounts), done = std::move(done)](
                                          redis::Pipeline::Commands&& sent,
                                          std::vector<Result<redis::Reply>>&& results) {
    count_puts(accounts, sent, results);
    done();
  };
  if (!pipeline_.submit(commands, on_replies)) {  // on this thread, now
    auto results = client_.run_many(commands);
    on_replies(std::move(commands), std::move(results));
  }
}

void RedisCache::stop() {
  stop_retrying();
  pipeline_.stop();
}

CacheStats RedisCache::stats() const {
  return CacheStats{.hits = hits_.load(),
                    .misses = misses_.load(),
                    .stale_writes_ignored = stale_.load(),
                    .entries = 0,
                    .errors = errors_.load(),
                    .unsettled = unsettled_count_.load(),
                    .unsettled_dropped = unsettled_dropped_.load()};
}

}  // namespace balanced::cache
