#include "redis/client.h"

#include "core/monotonic.h"
#include "net/url.h"
#include "observe/log.h"

#include <charconv>
#include <map>

namespace balanced::redis {

namespace {

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
  constexpr std::string_view expected =
      "expected redis[s]://[USER[:PASSWORD]@]HOST:PORT or "
      "redis[s]-cluster://[USER[:PASSWORD]@]HOST:PORT,HOST:PORT,...";
  auto parsed = net::parse_url(url);
  if (!parsed) return Error{Code::invalid_request, std::string(expected)};
  ClientOptions options;
  if (parsed->scheme == "redis" || parsed->scheme == "rediss") {
    options.cluster = false;
  } else if (parsed->scheme == "redis-cluster" || parsed->scheme == "rediss-cluster") {
    options.cluster = true;
  } else {
    return Error{Code::invalid_request, std::string(expected)};
  }
  options.security.tls = parsed->scheme.starts_with("rediss");
  options.security.user = parsed->user;
  options.security.password = parsed->password;
  if (!parsed->path.empty() && parsed->path != "/") {
    return Error{Code::invalid_request, "a Redis URL takes no path (database 0 only, as a cluster has)"};
  }
  std::string_view rest = parsed->authority;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    auto endpoint = parse_endpoint(rest.substr(0, comma));
    if (!endpoint) {
      return Error{Code::invalid_request, "bad HOST:PORT '" + std::string(rest.substr(0, comma)) + "'"};
    }
    options.seeds.push_back(*endpoint);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  }
  if (options.seeds.empty()) return Error{Code::invalid_request, "no Redis address"};
  if (!options.cluster && options.seeds.size() > 1) {
    return Error{Code::invalid_request, "redis:// takes one address; use redis-cluster://"};
  }
  return options;
}

void apply(const SecurityOverrides& overrides, ClientOptions& options) {
  if (!overrides.ca_file.empty()) options.security.ca_file = overrides.ca_file;
  if (!overrides.user.empty()) options.security.user = overrides.user;
  if (!overrides.password_file.empty()) options.security.password_file = overrides.password_file;
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
  Node(Endpoint e, Client& c) : endpoint(std::move(e)), client(c), options(c.options_) {}

  bool breaker_open() const {
    return open_until_ms.load(std::memory_order_relaxed) > core::monotonic_ms();
  }
  void succeeded() { failures.store(0, std::memory_order_relaxed); }
  void failed() {
    if (failures.fetch_add(1, std::memory_order_relaxed) + 1 >= options.failures_to_open) {
      open_until_ms.store(core::monotonic_ms() + options.open_ms, std::memory_order_relaxed);
      failures.store(0, std::memory_order_relaxed);
    }
  }

  // An idle connection, or a new one (null when it cannot be made: counted, and logged
  // when the reason is not the network).
  std::unique_ptr<Connection> take(std::string& why) {
    {
      MutexLock lock(mutex);
      if (!idle.empty()) {
        std::unique_ptr<Connection> c = std::move(idle.back());
        idle.pop_back();
        return c;
      }
    }
    Failure failure = Failure::none;
    return client.connect(endpoint, failure, why);
  }
  void give_back(std::unique_ptr<Connection> c) {
    if (!c->usable()) return;
    MutexLock lock(mutex);
    if (idle.size() < options.idle_connections_max) idle.push_back(std::move(c));
  }

  // Sends the commands pipelined (each preceded by ASKING when `asking`) and reads
  // their replies; one Error for all when the connection fails.
  Result<std::vector<Reply>> pipeline(const std::vector<const Command*>& commands, bool asking) {
    if (breaker_open()) {
      return Error{Code::unavailable, "redis " + endpoint.address() + ": circuit open"};
    }
    std::string why;
    std::unique_ptr<Connection> c = take(why);
    if (c == nullptr) {
      failed();
      return Error{Code::unavailable, "redis " + endpoint.address() + ": " + why};
    }
    static constexpr std::string_view asking_resp = "*1\r\n$6\r\nASKING\r\n";
    std::string request;
    for (const Command* command : commands) {
      if (asking) request += asking_resp;
      append_resp(request, *command);
    }
    const size_t expected = commands.size() * (asking ? 2 : 1);
    auto replies = c->exchange(request, expected, options.timeout_ms);
    if (!replies.ok()) {
      failed();
      return Error{Code::unavailable, "redis " + endpoint.address() + ": " + replies.error().detail};
    }
    give_back(std::move(c));
    succeeded();
    if (!asking) return std::move(replies.value());
    std::vector<Reply> answers;
    answers.reserve(commands.size());
    for (size_t i = 1; i < expected; i += 2) answers.push_back(std::move(replies.value()[i]));
    return answers;
  }

  const Endpoint endpoint;
  Client& client;
  const ClientOptions& options;
  Mutex mutex;
  std::vector<std::unique_ptr<Connection>> idle GUARDED_BY(mutex);
  std::atomic<int> failures{0};
  std::atomic<int64_t> open_until_ms{0};
};

Client::Client(ClientOptions options) : options_(std::move(options)) {
  if (options_.security.tls) {
    auto tls = TlsContext::make(options_.security);
    if (tls.ok()) {
      tls_ = std::move(tls.value());
    } else {
      tls_error_ = tls.error().detail;
    }
  }
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
  nodes_.push_back(std::make_unique<Node>(endpoint, *this));
  return *nodes_.back();
}

std::unique_ptr<Connection> Client::connect(const Endpoint& endpoint, Failure& failure, std::string& why) {
  if (options_.security.tls && tls_ == nullptr) {
    failure = Failure::tls;
    why = tls_error_;
  } else {
    auto connection = Connection::open(endpoint, options_.security, tls_.get(), options_.timeout_ms,
                                       failure, why);
    if (connection != nullptr) return connection;
  }
  switch (failure) {
    case Failure::auth:
      counters_.auth_failures.fetch_add(1, std::memory_order_relaxed);
      break;
    case Failure::tls:
      counters_.tls_failures.fetch_add(1, std::memory_order_relaxed);
      break;
    default:
      counters_.network_failures.fetch_add(1, std::memory_order_relaxed);
  }
  // A refused password or certificate is configuration gone wrong (a rotated token, an
  // expired certificate): say so. The breaker bounds these lines to one per node per open_ms.
  if (failure == Failure::auth || failure == Failure::tls) {
    observe::log(observe::LogLevel::error, "redis refused the connection",
                 {{"server.address", endpoint.address()},
                  {"error.type", failure_name(failure)},
                  {"error.message", why}});
  }
  return nullptr;
}

ClientCounters Client::counters() const {
  return ClientCounters{.auth_failures = counters_.auth_failures.load(std::memory_order_relaxed),
                        .tls_failures = counters_.tls_failures.load(std::memory_order_relaxed),
                        .network_failures = counters_.network_failures.load(std::memory_order_relaxed)};
}

Status Client::probe(Failure& failure) {
  failure = Failure::network;
  std::string last = "no address";
  std::string request;
  append_resp(request, Command{"PING"});
  for (const Endpoint& seed : options_.seeds) {
    std::string why;
    Failure refused = Failure::none;
    auto connection = connect(seed, refused, why);
    if (connection == nullptr) {
      last = seed.address() + ": " + why;
      if (refused == Failure::auth || refused == Failure::tls) {
        failure = refused;
        return Status(Code::unavailable, "redis " + last);
      }
      continue;
    }
    auto replies = connection->exchange(request, 1, options_.timeout_ms);
    if (!replies.ok()) {
      last = seed.address() + ": " + replies.error().detail;
      continue;
    }
    const Reply& pong = replies.value().front();
    if (pong.is_error()) {  // NOAUTH: this server wants credentials none were given for
      failure = pong.text.starts_with("NOAUTH") || pong.text.starts_with("WRONGPASS") ||
                        pong.text.starts_with("NOPERM")
                    ? Failure::auth
                    : Failure::network;
      last = seed.address() + ": " + pong.text;
      if (failure == Failure::auth) return Status(Code::unavailable, "redis " + last);
      continue;
    }
    failure = Failure::none;
    return {};
  }
  return Status(Code::unavailable, "redis " + last);
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
  last_refresh_ms_.store(core::monotonic_ms(), std::memory_order_relaxed);
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
  if (core::monotonic_ms() - last_refresh_ms_.load(std::memory_order_relaxed) < options_.refresh_interval_ms_min) {
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

Result<std::shared_ptr<Client>> open_client(std::string_view url, const SecurityOverrides& overrides,
                                            int timeout_ms, std::string* unreachable) {
  auto options = parse_url(url);
  if (!options.ok()) return options.error();
  apply(overrides, options.value());
  options.value().timeout_ms = timeout_ms;
  auto client = std::make_shared<Client>(std::move(options.value()));
  // A missing or unreadable CA file stops the process (the client read it once, above).
  if (!client->tls_error().empty()) return Error{Code::invalid_request, client->tls_error()};
  Failure failure = Failure::none;
  Status probed = client->probe(failure);
  if (failure == Failure::auth || failure == Failure::tls) {
    return Error{Code::invalid_request, probed.detail()};
  }
  if (!probed.ok() && unreachable != nullptr) *unreachable = probed.detail();
  return client;
}

}  // namespace balanced::redis
