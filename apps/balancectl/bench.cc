#include "bench.h"

#include "load_shape.h"

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

namespace balanced::bench {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace json = boost::json;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

struct Acked {
  std::string id;
  size_t source;
  size_t destination;
  int64_t amount;
};

// What one worker thread saw; merged at the end.
struct ThreadResult {
  std::vector<uint32_t> latencies_us;
  std::vector<Acked> acked;
};

struct Counters {
  std::atomic<uint64_t> transfers_ok{0};
  std::atomic<uint64_t> transfers_rejected{0};  // 4xx business answers: valid outcomes
  std::atomic<uint64_t> transfers_unknown{0};   // 5xx or lost: the client would retry
  std::atomic<uint64_t> reads_ok{0};
  std::atomic<uint64_t> reads_failed{0};
  std::atomic<uint64_t> transport_errors{0};
  std::atomic<uint64_t> check_failures{0};
  std::atomic<uint64_t> checked{0};
  std::atomic<uint64_t> retries{0};           // transfers sent again after an unknown answer
  std::atomic<uint64_t> versions_checked{0};  // balance reads compared with earlier ones
};

struct Target {
  tcp::endpoint endpoint;
  std::string host_header;
};

struct Run {
  const BenchOptions& options;
  std::vector<Target> targets;
  std::string prefix;
  std::string run_tag;  // makes transaction ids unique per run
  AccountPicker picker;
  Counters counters;
  Clock::time_point deadline;
  std::mutex failure_mutex;
  std::vector<std::string> failures;  // first few check failures, for the report

  std::string account(size_t index) const { return prefix + std::to_string(index); }
  void failure(std::string text) {
    counters.check_failures.fetch_add(1);
    std::lock_guard lock(failure_mutex);
    if (failures.size() < 10) failures.push_back(std::move(text));
  }
};

using Response = bhttp::response<bhttp::string_body>;

// One keep-alive connection that reconnects after a transport error, to the next target.
class Connection {
 public:
  Connection(Run& run, size_t index) : run_(run), target_(index % run.targets.size()) {}

  net::awaitable<bool> request(bhttp::verb verb, std::string target, std::string body,
                               Response& response) {
    try {
      if (!stream_) {
        stream_.emplace(co_await net::this_coro::executor);
        co_await stream_->async_connect(run_.targets[target_].endpoint, net::use_awaitable);
        stream_->socket().set_option(tcp::no_delay(true));
      }
      bhttp::request<bhttp::string_body> req{verb, target, 11};
      req.set(bhttp::field::host, run_.targets[target_].host_header);
      if (!body.empty()) req.set(bhttp::field::content_type, "application/json");
      req.body() = std::move(body);
      req.prepare_payload();
      co_await bhttp::async_write(*stream_, req, net::use_awaitable);
      response = {};
      co_await bhttp::async_read(*stream_, buffer_, response, net::use_awaitable);
      if (!response.keep_alive()) reset();
      co_return true;
    } catch (const std::exception&) {
      run_.counters.transport_errors.fetch_add(1);
      reset();
      target_ = (target_ + 1) % run_.targets.size();
    }
    net::steady_timer pause(co_await net::this_coro::executor, std::chrono::milliseconds(50));
    co_await pause.async_wait(net::use_awaitable);
    co_return false;
  }

 private:
  void reset() {
    stream_.reset();
    buffer_.clear();
  }
  Run& run_;
  size_t target_;
  std::optional<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
};

net::awaitable<void> create_accounts(Run& run, size_t first, size_t step, bool& ok) {
  Connection connection(run, first);
  Response response;
  for (size_t i = first; i < run.options.accounts; i += step) {
    const std::string body = "{\"accountNumber\":\"" + run.account(i) +
                             "\",\"initialBalance\":" + std::to_string(run.options.initial_balance) +
                             "}";
    bool sent = false;
    for (int attempt = 0; attempt < 20 && !sent; ++attempt) {
      sent = co_await connection.request(bhttp::verb::post, "/accounts", body, response);
      if (sent && response.result_int() >= 500) sent = false;
    }
    if (!sent || (response.result_int() != 201 && response.result_int() != 409)) {
      ok = false;
      co_return;
    }
  }
}

// The version in a balance answer, or -1.
int64_t version_of(const std::string& body) {
  const size_t at = body.find("\"version\":");
  if (at == std::string::npos) return -1;
  return std::strtoll(body.c_str() + at + 10, nullptr, 10);
}

net::awaitable<void> load(Run& run, size_t connection_index, ThreadResult& result) {
  Connection connection(run, connection_index);
  // The highest version this client has seen per account: a read must never go below.
  std::unordered_map<size_t, int64_t> seen_versions;
  std::mt19937_64 random(connection_index * 7919 + 17);
  Response response;
  uint64_t sequence = 0;
  const auto& options = run.options;
  while (Clock::now() < run.deadline) {
    const bool read = options.read_fraction > 0 &&
                      std::uniform_real_distribution<double>(0, 1)(random) < options.read_fraction;
    const auto started = Clock::now();
    if (!options.path_override.empty()) {
      const bool sent =
          co_await connection.request(bhttp::verb::get, options.path_override, "", response);
      if (sent && response.result_int() < 300) {
        run.counters.reads_ok.fetch_add(1);
        result.latencies_us.push_back(static_cast<uint32_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started)
                .count()));
      } else {
        run.counters.reads_failed.fetch_add(1);
      }
      continue;
    }
    if (read) {
      const size_t account = run.picker.pick(random);
      const std::string target = "/accounts/" + run.account(account) + "/balance";
      const bool sent = co_await connection.request(bhttp::verb::get, target, "", response);
      if (sent && response.result_int() == 200) {
        run.counters.reads_ok.fetch_add(1);
        if (options.check) {
          const int64_t version = version_of(response.body());
          int64_t& highest = seen_versions[account];
          run.counters.versions_checked.fetch_add(1);
          if (version < highest) {
            run.failure("account " + run.account(account) + ": read version " +
                        std::to_string(version) + " after version " + std::to_string(highest));
          }
          highest = std::max(highest, version);
        }
      } else {
        run.counters.reads_failed.fetch_add(1);
      }
    } else {
      const size_t source = run.picker.pick(random);
      size_t destination = run.picker.pick(random);
      while (destination == source && options.accounts > 1) destination = run.picker.pick(random);
      const int64_t amount = std::uniform_int_distribution<int64_t>(1, options.amount_max)(random);
      std::string id = run.run_tag + std::to_string(connection_index) + "-" +
                       std::to_string(++sequence);
      const std::string body = "{\"transactionId\":\"" + id + "\",\"sourceAccountNumber\":\"" +
                               run.account(source) + "\",\"destinationAccountNumber\":\"" +
                               run.account(destination) +
                               "\",\"amount\":" + std::to_string(amount) + "}";
      bool sent =
          co_await connection.request(bhttp::verb::post, "/accounts/transactions", body, response);
      unsigned status = sent ? response.result_int() : 0;
      // No answer, or a 5xx: the outcome is unknown. Send the same request again until
      // it has one, as the API asks of clients.
      for (int retry = 0; (status == 0 || status >= 500) && retry < options.unknown_retries_max;
           ++retry) {
        run.counters.retries.fetch_add(1);
        if (sent) {  // a 5xx: give the service a moment (a lost answer already paused)
          net::steady_timer pause(co_await net::this_coro::executor, std::chrono::milliseconds(50));
          co_await pause.async_wait(net::use_awaitable);
        }
        sent = co_await connection.request(bhttp::verb::post, "/accounts/transactions", body,
                                           response);
        status = sent ? response.result_int() : 0;
      }
      if (status == 201 || status == 200) {
        run.counters.transfers_ok.fetch_add(1);
        if (options.check) result.acked.push_back(Acked{std::move(id), source, destination, amount});
      } else if (status >= 400 && status < 500) {
        run.counters.transfers_rejected.fetch_add(1);
      } else {
        run.counters.transfers_unknown.fetch_add(1);
        continue;  // a lost answer is not a latency sample
      }
    }
    result.latencies_us.push_back(static_cast<uint32_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started).count()));
  }
}

net::awaitable<void> check(Run& run, std::vector<Acked>& acked, size_t first, size_t step) {
  Connection connection(run, first);
  Response response;
  for (size_t i = first; i < acked.size(); i += step) {
    const Acked& a = acked[i];
    bool sent = false;
    for (int attempt = 0; attempt < 20 && !sent; ++attempt) {
      sent = co_await connection.request(bhttp::verb::get, "/transactions/" + a.id, "", response);
    }
    run.counters.checked.fetch_add(1);
    if (!sent || response.result_int() != 200) {
      run.failure("acknowledged transfer " + a.id + " not found (status " +
                  std::to_string(sent ? response.result_int() : 0) + ")");
      continue;
    }
    boost::system::error_code ec;
    json::value v = json::parse(response.body(), ec);
    const json::object* o = ec ? nullptr : v.if_object();
    if (o == nullptr || !o->contains("status") || o->at("status") != "committed" ||
        !o->contains("amount") || o->at("amount") != a.amount ||
        o->at("sourceAccountNumber") != json::value(run.account(a.source)) ||
        o->at("destinationAccountNumber") != json::value(run.account(a.destination))) {
      run.failure("acknowledged transfer " + a.id + " differs: " + response.body());
    }
  }
}

// Runs one coroutine per connection over options.threads io_contexts until all finish.
template <typename Spawn>
void run_phase(size_t threads, size_t connections, Spawn spawn) {
  std::vector<std::unique_ptr<net::io_context>> contexts;
  for (size_t t = 0; t < threads; ++t) contexts.push_back(std::make_unique<net::io_context>(1));
  for (size_t c = 0; c < connections; ++c) spawn(*contexts[c % threads], c);
  std::vector<std::thread> workers;
  for (auto& context : contexts) workers.emplace_back([&context] { context->run(); });
  for (auto& worker : workers) worker.join();
}


}  // namespace

int run_bench(const BenchOptions& options) {
  std::vector<Target> targets;
  std::string_view list = options.target;
  while (!list.empty()) {
    const std::string text(list.substr(0, list.find(',')));
    list = list.find(',') == std::string_view::npos ? std::string_view() : list.substr(list.find(',') + 1);
    const size_t colon = text.rfind(':');
    boost::system::error_code ec;
    const auto address = net::ip::make_address(text.substr(0, colon == std::string::npos ? 0 : colon), ec);
    const int port = colon == std::string::npos ? 0 : std::atoi(text.c_str() + colon + 1);
    if (colon == std::string::npos || ec || port <= 0 || port > 65535) {
      std::fprintf(stderr, "--target: '%s' is not IP:PORT\n", text.c_str());
      return 2;
    }
    targets.push_back(Target{tcp::endpoint(address, static_cast<uint16_t>(port)), text});
  }
  if (targets.empty()) {
    std::fprintf(stderr, "--target: expected IP:PORT[,IP:PORT...]\n");
    return 2;
  }
  std::string prefix = options.account_prefix;
  if (prefix.empty()) {
    char text[24];
    std::snprintf(text, sizeof text, "b%08x-", static_cast<unsigned>(std::random_device{}()));
    prefix = text;
  }
  Run run{.options = options,
          .targets = std::move(targets),
          .prefix = prefix,
          .run_tag = [] {
            char tag[24];
            std::snprintf(tag, sizeof tag, "r%08x-", static_cast<unsigned>(std::random_device{}()));
            return std::string(tag);
          }(),
          .picker = AccountPicker(std::max<size_t>(1, options.accounts), options.zipf_exponent),
          .counters = {},
          .deadline = {},
          .failure_mutex = {},
          .failures = {}};
  const size_t threads = std::max<size_t>(1, options.threads);
  const size_t connections = std::max<size_t>(1, options.connections);

  if (options.setup && options.path_override.empty()) {
    bool ok = true;
    const auto started = Clock::now();
    run_phase(threads, connections, [&](net::io_context& context, size_t c) {
      net::co_spawn(context, create_accounts(run, c, connections, ok), net::detached);
    });
    if (!ok) {
      std::fprintf(stderr, "setup: could not create the accounts at %s\n", options.target.c_str());
      return 1;
    }
    std::fprintf(stderr, "setup: %zu accounts with prefix %s in %.1f s\n", options.accounts,
                 prefix.c_str(),
                 std::chrono::duration<double>(Clock::now() - started).count());
  }

  std::vector<ThreadResult> results(connections);
  run.deadline = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(options.duration_s * 1000));
  const auto started = Clock::now();
  std::atomic<bool> running{true};
  std::thread progress([&] {
    uint64_t last = 0;
    int second = 0;
    while (running.load()) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      if (!running.load() || !options.progress) continue;
      const uint64_t done = run.counters.transfers_ok + run.counters.transfers_rejected +
                            run.counters.reads_ok + run.counters.reads_failed;
      std::fprintf(stderr, "t=%ds requests/s=%llu transfers ok=%llu rejected=%llu unknown=%llu errors=%llu\n",
                   ++second, static_cast<unsigned long long>(done - last),
                   static_cast<unsigned long long>(run.counters.transfers_ok.load()),
                   static_cast<unsigned long long>(run.counters.transfers_rejected.load()),
                   static_cast<unsigned long long>(run.counters.transfers_unknown.load()),
                   static_cast<unsigned long long>(run.counters.transport_errors.load()));
      last = done;
    }
  });
  run_phase(threads, connections, [&](net::io_context& context, size_t c) {
    net::co_spawn(context, load(run, c, results[c]), net::detached);
  });
  const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
  running = false;
  progress.join();

  std::vector<uint32_t> latencies;
  std::vector<Acked> acked;
  for (auto& r : results) {
    latencies.insert(latencies.end(), r.latencies_us.begin(), r.latencies_us.end());
    std::move(r.acked.begin(), r.acked.end(), std::back_inserter(acked));
  }
  std::sort(latencies.begin(), latencies.end());
  const auto& c = run.counters;
  const uint64_t transfers = c.transfers_ok + c.transfers_rejected;
  const uint64_t reads = c.reads_ok + c.reads_failed;
  std::printf("duration_s=%.2f connections=%zu accounts=%zu zipf=%.2f read_fraction=%.2f\n",
              elapsed, connections, options.accounts, options.zipf_exponent,
              options.read_fraction);
  std::printf("transfers: ok=%llu rejected=%llu unknown=%llu retries=%llu  reads: ok=%llu "
              "failed=%llu versions_checked=%llu  transport_errors=%llu\n",
              static_cast<unsigned long long>(c.transfers_ok.load()),
              static_cast<unsigned long long>(c.transfers_rejected.load()),
              static_cast<unsigned long long>(c.transfers_unknown.load()),
              static_cast<unsigned long long>(c.retries.load()),
              static_cast<unsigned long long>(c.reads_ok.load()),
              static_cast<unsigned long long>(c.reads_failed.load()),
              static_cast<unsigned long long>(c.versions_checked.load()),
              static_cast<unsigned long long>(c.transport_errors.load()));
  std::printf("throughput: requests/s=%.0f transfers/s=%.0f reads/s=%.0f\n",
              (transfers + reads) / elapsed, transfers / elapsed, reads / elapsed);
  std::printf("latency_ms: p50=%.3f p90=%.3f p99=%.3f p99.9=%.3f max=%.3f\n",
              percentile(latencies, 0.50), percentile(latencies, 0.90),
              percentile(latencies, 0.99), percentile(latencies, 0.999),
              latencies.empty() ? 0.0 : latencies.back() / 1000.0);
  std::printf("RESULT requests_per_s=%.0f p50_ms=%.3f p99_ms=%.3f\n", (transfers + reads) / elapsed,
              percentile(latencies, 0.50), percentile(latencies, 0.99));
  std::fflush(stdout);  // the load phase is over: scripts may sample now, before the check

  int exit_code = (transfers + reads) == 0 ? 1 : 0;
  const uint64_t failed = c.transfers_unknown + c.reads_failed + c.transport_errors;
  std::printf("failures: %llu (bound %s)\n", static_cast<unsigned long long>(failed),
              options.failures_max < 0 ? "none" : std::to_string(options.failures_max).c_str());
  if (options.failures_max >= 0 && failed > static_cast<uint64_t>(options.failures_max)) exit_code = 1;
  // Reads that went back in version were recorded as failures during the load.
  if (c.check_failures > 0) exit_code = 1;
  if (options.check && options.path_override.empty() && !acked.empty()) {
    run_phase(threads, connections, [&](net::io_context& context, size_t i) {
      net::co_spawn(context, check(run, acked, i, connections), net::detached);
    });
    std::printf("check: %llu acknowledged transfers fetched, %llu problems\n",
                static_cast<unsigned long long>(c.checked.load()),
                static_cast<unsigned long long>(c.check_failures.load()));
    for (const auto& failure : run.failures) std::printf("  %s\n", failure.c_str());
    if (c.check_failures > 0) exit_code = 1;
  }
  std::fflush(stdout);
  return exit_code;
}

}  // namespace balanced::bench
