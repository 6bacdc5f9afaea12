// The replica table: parsing --upstream, resolving names again, draining what vanished,
// choosing a replica. The health checks, which speak HTTP, are in proxy.cc.
#include "gateway/upstream.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <optional>
#include <random>

#include "observe/log.h"

namespace balanced::gateway {
namespace {

// Every address `host` resolves to (IPv4 and IPv6), sorted and unique; nullopt when the
// lookup fails. Blocks for as long as the system resolver takes (resolv.conf bounds it).
std::optional<std::vector<std::string>> resolve_addresses(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), nullptr, &hints, &found) != 0) return std::nullopt;
  std::vector<std::string> addresses;
  for (addrinfo* entry = found; entry != nullptr; entry = entry->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    const void* raw = nullptr;
    if (entry->ai_family == AF_INET) {
      raw = &reinterpret_cast<const sockaddr_in*>(entry->ai_addr)->sin_addr;
    } else if (entry->ai_family == AF_INET6) {
      raw = &reinterpret_cast<const sockaddr_in6*>(entry->ai_addr)->sin6_addr;
    } else {
      continue;
    }
    if (::inet_ntop(entry->ai_family, raw, text, sizeof(text)) != nullptr) addresses.emplace_back(text);
  }
  ::freeaddrinfo(found);
  std::sort(addresses.begin(), addresses.end());
  addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());
  return addresses;
}

bool is_address(const std::string& host) {
  unsigned char buffer[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, host.c_str(), buffer) == 1 || ::inet_pton(AF_INET6, host.c_str(), buffer) == 1;
}

}  // namespace

Result<std::unique_ptr<Upstreams>> Upstreams::parse(const std::vector<std::string>& urls,
                                                    observe::Registry* registry) {
  std::unique_ptr<Upstreams> upstreams(new Upstreams());
  if (registry) {
    upstreams->healthy_family_ = &registry->gauges("balance_gateway_upstream_healthy", "1 while a replica is in rotation");
    upstreams->ejections_family_ = &registry->counters("balance_gateway_upstream_ejections_total",
                                                       "Times a replica was taken out of rotation");
    upstreams->replicas_gauge_ = &registry->gauge("balance_gateway_upstream_replicas",
                                                  "Replicas the gateway knows: addresses of every --upstream");
  }
  for (size_t i = 0; i < replicas_max; ++i) upstreams->replicas_.push_back(std::make_unique<Replica>());
  MutexLock lock(upstreams->table_mutex_);
  for (const std::string& text : urls) {
    auto url = net::parse_url(text);
    std::optional<net::HostPort> address;
    if (url && url->scheme == "http" && url->user.empty() && (url->path.empty() || url->path == "/")) {
      address = net::parse_host_port(url->authority);
    }
    if (!address) return Error{Code::invalid_request, "--upstream " + text + ": expected http://HOST:PORT"};
    for (const Source& existing : upstreams->sources_) {
      if (existing.host == address->host && existing.port == address->port) {
        return Error{Code::invalid_request, "--upstream " + text + " given twice"};
      }
    }
    upstreams->sources_.push_back(Source{address->host, address->port, is_address(address->host), {}});
  }
  if (upstreams->sources_.empty()) return Error{Code::invalid_request, "--upstream: at least one replica"};
  if (upstreams->sources_.size() > replicas_max) {
    return Error{Code::invalid_request, "--upstream: at most " + std::to_string(replicas_max)};
  }
  lock.unlock();
  upstreams->resolve_now();
  return upstreams;
}

Upstreams::~Upstreams() {
  {
    MutexLock lock(stop_mutex_);
    stopping_ = true;
  }
  stop_wake_.notify_all();
  if (checker_.joinable()) checker_.join();
  if (resolver_.joinable()) resolver_.join();
}

void Upstreams::start(HealthOptions health, int64_t resolve_interval_ms) {
  checker_ = std::thread([this, health] {
    observe::name_this_thread("gw-health");
    check_loop(health);
  });
  bool any_name = false;
  {
    MutexLock lock(table_mutex_);
    for (const Source& source : sources_) any_name = any_name || !source.is_address;
  }
  if (any_name) {
    resolver_ = std::thread([this, resolve_interval_ms] {
      observe::name_this_thread("gw-resolve");
      resolve_loop(resolve_interval_ms);
    });
  }
}

void Upstreams::resolve_loop(int64_t interval_ms) {
  for (;;) {
    {
      MutexLock lock(stop_mutex_);
      if (lock.wait_for(stop_wake_, std::chrono::milliseconds(interval_ms),
                        [&]() REQUIRES(stop_mutex_) { return stopping_; })) {
        return;
      }
    }
    resolve_now();
  }
}

void Upstreams::resolve_now() {
  // The lookups run without the table's lock: a slow resolver holds no request.
  std::vector<std::pair<std::string, uint16_t>> names;
  bool first = false;
  {
    MutexLock lock(table_mutex_);
    for (const Source& source : sources_) {
      if (!source.is_address) names.emplace_back(source.host, source.port);
    }
    first = std::all_of(replicas_.begin(), replicas_.end(),
                        [](const auto& replica) { return replica->generation.load() == 0; });
  }
  std::vector<std::optional<std::vector<std::string>>> answers;
  for (const auto& [host, port] : names) answers.push_back(resolve_addresses(host));

  MutexLock lock(table_mutex_);
  std::vector<net::HostPort> wanted;
  size_t answer = 0;
  for (Source& source : sources_) {
    if (source.is_address) {
      wanted.push_back(net::HostPort{source.host, source.port});
      continue;
    }
    const auto& found = answers[answer++];
    if (!found || found->empty()) {
      // A failed or empty answer keeps the last set: DNS trouble never empties the table.
      if (source.last.empty() || !found) {
        observe::log(observe::LogLevel::warn, "upstream name did not resolve; keeping its last addresses",
                     {{"upstream", source.host}, {"addresses", std::to_string(source.last.size())}});
      }
    } else {
      std::vector<net::HostPort> addresses;
      for (const std::string& address : *found) {
        if (addresses.size() >= addresses_per_name_max) {
          observe::log(observe::LogLevel::warn, "upstream name resolves to too many addresses; ignoring the rest",
                       {{"upstream", source.host}, {"taken", std::to_string(addresses_per_name_max)}});
          break;
        }
        addresses.push_back(net::HostPort{address, source.port});
      }
      source.last = std::move(addresses);
    }
    wanted.insert(wanted.end(), source.last.begin(), source.last.end());
  }
  std::sort(wanted.begin(), wanted.end(), [](const net::HostPort& a, const net::HostPort& b) {
    return std::tie(a.host, a.port) < std::tie(b.host, b.port);
  });
  wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
  // At start every replica is in rotation at once (the checks follow within a second);
  // one found later waits for its first passing check.
  reconcile(wanted, first);
}

void Upstreams::reconcile(const std::vector<net::HostPort>& wanted, bool healthy_at_once) {
  release_drained();
  std::vector<bool> present(wanted.size(), false);
  for (auto& slot : replicas_) {
    Replica& replica = *slot;
    const Replica::State state = replica.state.load();
    if (state == Replica::State::empty) continue;
    const Replica::Target target = replica.target();
    const auto it = std::find(wanted.begin(), wanted.end(), target.address);
    if (it == wanted.end()) {
      if (state == Replica::State::active) {
        replica.state.store(Replica::State::draining);
        observe::log(observe::LogLevel::info, "upstream address gone; draining it", {{"upstream", target.name}});
      }
      continue;
    }
    present[static_cast<size_t>(it - wanted.begin())] = true;
    if (state == Replica::State::draining) {
      replica.state.store(Replica::State::active);
      observe::log(observe::LogLevel::info, "upstream address back", {{"upstream", target.name}});
    }
  }
  for (size_t i = 0; i < wanted.size(); ++i) {
    if (present[i]) continue;
    auto free_slot = std::find_if(replicas_.begin(), replicas_.end(), [](const auto& replica) {
      return replica->state.load() == Replica::State::empty;
    });
    if (free_slot == replicas_.end()) {
      observe::log(observe::LogLevel::error, "more upstream addresses than the gateway holds; ignoring the rest",
                   {{"upstream", wanted[i].text()}, {"replicas_max", std::to_string(replicas_max)}});
      break;
    }
    Replica& replica = **free_slot;
    {
      MutexLock slot_lock(replica.mutex);
      replica.target_ = Replica::Target{wanted[i], wanted[i].text(), replica.generation.load() + 1};
      replica.generation.store(replica.target_.generation);
    }
    replica.failures.store(0);
    replica.healthy.store(healthy_at_once);
    if (healthy_family_) {
      replica.healthy_gauge = &healthy_family_->Add({{"upstream", wanted[i].text()}});
      replica.healthy_gauge->Set(healthy_at_once ? 1 : 0);
      replica.ejections = &ejections_family_->Add({{"upstream", wanted[i].text()}});
    }
    replica.state.store(Replica::State::active);
    observe::log(observe::LogLevel::info, "upstream address added",
                 {{"upstream", wanted[i].text()}, {"in_rotation", healthy_at_once ? "yes" : "after its first check"}});
  }
  if (replicas_gauge_) replicas_gauge_->Set(static_cast<double>(size()));
}

void Upstreams::release_drained() {
  for (auto& slot : replicas_) {
    Replica& replica = *slot;
    if (replica.state.load() != Replica::State::draining || replica.in_flight.load() != 0) continue;
    replica.state.store(Replica::State::empty);
    replica.healthy.store(false);
    if (healthy_family_) {
      if (replica.healthy_gauge) healthy_family_->Remove(replica.healthy_gauge);
      if (replica.ejections) ejections_family_->Remove(replica.ejections);
    }
    replica.healthy_gauge = nullptr;
    replica.ejections = nullptr;
    observe::log(observe::LogLevel::info, "upstream address drained", {{"upstream", replica.target().name}});
  }
}

size_t Upstreams::size() const {
  size_t count = 0;
  for (const auto& replica : replicas_) count += replica->state.load() != Replica::State::empty ? 1 : 0;
  return count;
}

size_t Upstreams::healthy_count() const {
  size_t count = 0;
  for (const auto& replica : replicas_) {
    count += replica->state.load() == Replica::State::active && replica->healthy.load() ? 1 : 0;
  }
  return count;
}

int Upstreams::choose(int exclude) {
  thread_local std::minstd_rand random{std::random_device{}()};
  int candidates[replicas_max];
  int count = 0;
  for (size_t i = 0; i < replicas_.size(); ++i) {
    const Replica& replica = *replicas_[i];
    if (static_cast<int>(i) != exclude && replica.state.load(std::memory_order_acquire) == Replica::State::active &&
        replica.healthy.load(std::memory_order_relaxed)) {
      candidates[count++] = static_cast<int>(i);
    }
  }
  if (count == 0) return -1;
  if (count == 1) return candidates[0];
  const int a = candidates[random() % static_cast<unsigned>(count)];
  int b = candidates[random() % static_cast<unsigned>(count - 1)];
  if (b == a) b = candidates[count - 1];
  return replicas_[a]->in_flight.load(std::memory_order_relaxed) <=
                 replicas_[b]->in_flight.load(std::memory_order_relaxed)
             ? a
             : b;
}

void Upstreams::set_healthy(Replica& replica, bool healthy, const char* reason) {
  if (replica.healthy.exchange(healthy) == healthy) return;
  MutexLock lock(table_mutex_);
  if (replica.healthy_gauge) replica.healthy_gauge->Set(healthy ? 1 : 0);
  if (!healthy && replica.ejections) replica.ejections->Increment();
  if (healthy) {
    observe::log(observe::LogLevel::info, "upstream back in rotation", {{"upstream", replica.target().name}});
  } else {
    observe::log(observe::LogLevel::warn, "upstream out of rotation",
                 {{"upstream", replica.target().name}, {"reason", reason}});
  }
}

void Upstreams::mark_failed(size_t index) { set_healthy(*replicas_[index], false, "connection failed"); }

}  // namespace balanced::gateway
