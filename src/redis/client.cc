#include "redis/client.h"

#include "net/url.h"

#include <charconv>
#include <map>

namespace balanced::redis {

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Reply copy_reply(const redisReply* r) {
  Reply reply;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      reply.type = Reply::Type::string;
      reply.text.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      reply.type = Reply::Type::status;
      reply.text.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      reply.type = Reply::Type::error;
      reply.text.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      reply.type = Reply::Type::integer;
      reply.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      reply.type = Reply::Type::array;
      for (size_t i = 0; i < r->elements; ++i) reply.elements.push_back(copy_reply(r->element[i]));
      break;
    default:
      reply.type = Reply::Type::nil;
  }
  return reply;
}

std::optional<Endpoint> parse_endpoint(std::string_view text) {
  auto parsed = net::parse_host_port(text);
  if (!parsed) return std::nullopt;
  return Endpoint{std::move(parsed->host), parsed->port};
}

// "MOVED 3999 127.0.0.1:6381" / "ASK 3999 127.0.0.1:6381"
std::optional<Endpoint> redirect_target(const Reply& reply, std::string_view kind) {
  if (!reply.is_error() || !reply.text.starts_with(kind)) return std::nullopt;
  const size_t space = reply.text.rfind(' ');
  if (space == std::string::npos) return std::nullopt;
  return parse_endpoint(std::string_view(reply.text).substr(space + 1));
}

}  // namespace

Result<ClientOptions> parse_url(std::string_view url) {
  ClientOptions options;
  std::string_view rest;
  if (url.starts_with("redis://")) {
    rest = url.substr(8);
  } else if (url.starts_with("redis-cluster://")) {
    rest = url.substr(16);
    options.cluster = true;
  } else {
    return Error{Code::invalid_request, "--cache: expected redis://HOST:PORT or "
                                        "redis-cluster://HOST:PORT,HOST:PORT,..."};
  }
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    auto endpoint = parse_endpoint(rest.substr(0, comma));
    if (!endpoint) {
      return Error{Code::invalid_request, "--cache: bad HOST:PORT '" +
                                              std::string(rest.substr(0, comma)) + "'"};
    }
    options.seeds.push_back(*endpoint);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  }
  if (options.seeds.empty()) return Error{Code::invalid_request, "--cache: no Redis address"};
  if (!options.cluster && options.seeds.size() > 1) {
    return Error{Code::invalid_request, "--cache: redis:// takes one address; use redis-cluster://"};
  }
  return options;
}

uint16_t key_slot(std::string_view key) {
  // Hash tag: the part between the first '{' and the next '}', when not empty.
  const size_t open = key.find('{');
  if (open != std::string_view::npos) {
    const size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
  }
  uint16_t crc = 0;  // CRC16-XMODEM: polynomial 0x1021, initial 0
  for (unsigned char byte : key) {
    crc ^= static_cast<uint16_t>(byte << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021) : static_cast<uint16_t>(crc << 1);
    }
  }
  return crc & 16383;
}

// One server: a pool of connections and a circuit breaker.
struct Client::Node {
  Node(Endpoint e, const ClientOptions& o) : endpoint(std::move(e)), options(o) {}
  ~Node() {
    for (redisContext* c : idle) redisFree(c);
  }

  bool breaker_open() const {
    return open_until_ms.load(std::memory_order_relaxed) > now_ms();
  }
  void succeeded() { failures.store(0, std::memory_order_relaxed); }
  void failed() {
    if (failures.fetch_add(1, std::memory_order_relaxed) + 1 >= options.failures_to_open) {
      open_until_ms.store(now_ms() + options.open_ms, std::memory_order_relaxed);
      failures.store(0, std::memory_order_relaxed);
    }
  }

  redisContext* take() {
    {
      MutexLock lock(mutex);
      if (!idle.empty()) {
        redisContext* c = idle.back();
        idle.pop_back();
        return c;
      }
    }
    const timeval timeout{options.timeout_ms / 1000, (options.timeout_ms % 1000) * 1000};
    redisContext* c = redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port, timeout);
    if (c == nullptr) return nullptr;
    if (c->err != 0 || redisSetTimeout(c, timeout) != REDIS_OK) {
      redisFree(c);
      return nullptr;
    }
    return c;
  }
  void give_back(redisContext* c) {
    if (c->err == 0) {
      MutexLock lock(mutex);
      if (idle.size() < options.idle_connections_max) {
        idle.push_back(c);
        return;
      }
    }
    redisFree(c);
  }

  // Sends the commands pipelined (each preceded by ASKING when `asking`) and reads
  // their replies; one Error for all when the connection fails.
  Result<std::vector<Reply>> pipeline(const std::vector<const Command*>& commands, bool asking) {
    if (breaker_open()) {
      return Error{Code::unavailable, "redis " + endpoint.address() + ": circuit open"};
    }
    redisContext* c = take();
    if (c == nullptr) {
      failed();
      return Error{Code::unavailable, "redis " + endpoint.address() + ": cannot connect"};
    }
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const Command* command : commands) {
      if (asking) redisAppendCommand(c, "ASKING");
      argv.clear();
      lengths.clear();
      for (const auto& arg : *command) {
        argv.push_back(arg.data());
        lengths.push_back(arg.size());
      }
      redisAppendCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lengths.data());
    }
    std::vector<Reply> replies;
    replies.reserve(commands.size());
    for (size_t i = 0; i < commands.size() * (asking ? 2 : 1); ++i) {
      void* raw = nullptr;
      if (redisGetReply(c, &raw) != REDIS_OK || raw == nullptr) {
        std::string why = c->errstr;
        redisFree(c);
        failed();
        return Error{Code::unavailable, "redis " + endpoint.address() + ": " + why};
      }
      auto* reply = static_cast<redisReply*>(raw);
      if (!asking || i % 2 == 1) replies.push_back(copy_reply(reply));
      freeReplyObject(reply);
    }
    give_back(c);
    succeeded();
    return replies;
  }

  const Endpoint endpoint;
  const ClientOptions& options;
  Mutex mutex;
  std::vector<redisContext*> idle GUARDED_BY(mutex);
  std::atomic<int> failures{0};
  std::atomic<int64_t> open_until_ms{0};
};

Client::Client(ClientOptions options) : options_(std::move(options)) {
  Node* first = &node_at(options_.seeds.front());
  for (auto& slot : slots_) slot.store(first, std::memory_order_relaxed);
  if (options_.cluster) (void)refresh_slots();  // if no node answers now, the first MOVED will
}

Client::~Client() = default;

Client::Node& Client::node_at(const Endpoint& endpoint) {
  MutexLock lock(mutex_);
  for (auto& node : nodes_) {
    if (node->endpoint == endpoint) return *node;
  }
  nodes_.push_back(std::make_unique<Node>(endpoint, options_));
  return *nodes_.back();
}

Client::Node& Client::node_for(std::string_view key) {
  return *slots_[key_slot(key)].load(std::memory_order_relaxed);
}

std::vector<Endpoint> Client::nodes() {
  MutexLock lock(mutex_);
  std::vector<Endpoint> endpoints;
  for (auto& node : nodes_) endpoints.push_back(node->endpoint);
  return endpoints;
}

Status Client::refresh_slots() {
  if (!options_.cluster) return {};
  last_refresh_ms_.store(now_ms(), std::memory_order_relaxed);
  // Ask the known nodes, then the seeds, until one answers.
  std::vector<Endpoint> candidates = nodes();
  candidates.insert(candidates.end(), options_.seeds.begin(), options_.seeds.end());
  const Command command{"CLUSTER", "SLOTS"};
  std::string last_error = "no node";
  for (const auto& candidate : candidates) {
    auto replies = node_at(candidate).pipeline({&command}, false);
    if (!replies.ok()) {
      last_error = replies.error().detail;
      continue;
    }
    const Reply& table = replies.value().front();
    if (table.type != Reply::Type::array) {
      last_error = candidate.address() + ": " + table.text;
      continue;
    }
    // [[start, end, [host, port, id], replicas...], ...]
    for (const Reply& range : table.elements) {
      if (range.elements.size() < 3 || range.elements[2].elements.size() < 2) continue;
      const auto& master = range.elements[2];
      std::string host = master.elements[0].text;
      if (host.empty() || host == "?") host = candidate.host;
      Node* node = &node_at(Endpoint{host, static_cast<uint16_t>(master.elements[1].integer)});
      const int64_t start = range.elements[0].integer;
      const int64_t end = range.elements[1].integer;
      for (int64_t slot = start; slot <= end && slot < 16384; ++slot) {
        if (slot >= 0) slots_[static_cast<size_t>(slot)].store(node, std::memory_order_relaxed);
      }
    }
    return {};
  }
  return Status(Code::unavailable, "cannot load the cluster slot table: " + last_error);
}

void Client::maybe_refresh() {
  if (!options_.cluster) return;
  if (now_ms() - last_refresh_ms_.load(std::memory_order_relaxed) < options_.refresh_interval_ms_min) {
    return;
  }
  (void)refresh_slots();
}

Result<Reply> Client::follow(std::string_view key, const Command& command) {
  Node* target = &node_for(key);
  bool asking = false;
  int hops_left = options_.redirections_max;
  for (;;) {
    auto replies = target->pipeline({&command}, asking);
    if (!replies.ok()) {
      // A node that went away may have handed its slots to another (failover).
      maybe_refresh();
      return replies.error();
    }
    Reply reply = std::move(replies.value().front());
    if (!options_.cluster || !reply.is_error() || hops_left-- <= 0) return reply;
    if (auto moved = redirect_target(reply, "MOVED")) {
      Node* owner = &node_at(*moved);
      slots_[key_slot(key)].store(owner, std::memory_order_relaxed);
      maybe_refresh();
      target = owner;
      asking = false;
    } else if (auto ask = redirect_target(reply, "ASK")) {
      target = &node_at(*ask);  // this command only; the slot is still migrating
      asking = true;
    } else {
      return reply;
    }
  }
}

Result<Reply> Client::run(std::string_view key, const Command& command) {
  return follow(key, command);
}

Result<Reply> Client::follow_ask(const Reply& ask, const Command& command) {
  auto target = redirect_target(ask, "ASK");
  if (!target) return ask;
  auto replies = node_at(*target).pipeline({&command}, true);
  if (!replies.ok()) return replies.error();
  return std::move(replies.value().front());
}

std::vector<Result<Reply>> Client::run_many(
    const std::vector<std::pair<std::string, Command>>& commands) {
  std::vector<Result<Reply>> results(commands.size(), Error{Code::unavailable, "not sent"});
  // Group by node, preserving order within each node.
  std::map<Node*, std::vector<size_t>> groups;
  for (size_t i = 0; i < commands.size(); ++i) groups[&node_for(commands[i].first)].push_back(i);
  for (auto& [node, indexes] : groups) {
    std::vector<const Command*> batch;
    for (size_t i : indexes) batch.push_back(&commands[i].second);
    auto replies = node->pipeline(batch, false);
    if (!replies.ok()) {
      for (size_t i : indexes) results[i] = replies.error();
      maybe_refresh();
      continue;
    }
    for (size_t k = 0; k < indexes.size(); ++k) {
      Reply& reply = replies.value()[k];
      const size_t i = indexes[k];
      if (options_.cluster && reply.is_error() &&
          (reply.text.starts_with("MOVED") || reply.text.starts_with("ASK"))) {
        // Redirected: send it again on its own (rare: the slot table was stale). A MOVED
        // first teaches the table the slot's owner.
        if (auto moved = redirect_target(reply, "MOVED")) {
          slots_[key_slot(commands[i].first)].store(&node_at(*moved), std::memory_order_relaxed);
          maybe_refresh();
          results[i] = follow(commands[i].first, commands[i].second);
        } else {
          results[i] = follow_ask(reply, commands[i].second);
        }
      } else {
        results[i] = std::move(reply);
      }
    }
  }
  return results;
}

}  // namespace balanced::redis
