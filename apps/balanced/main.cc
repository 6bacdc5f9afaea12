// balanced: the balance service. Parses flags, picks the concrete store and cache,
// wires them into the engine, the API and the HTTP server, and drains on SIGTERM.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <thread>

#include "api/api.h"
#include "cache/memory_cache.h"
#include "core/validate.h"
#include "engine/engine.h"
#include "http/server.h"
#include "observe/log.h"
#include "observe/metrics.h"
#include "storage/sqlite/sqlite_store.h"

using namespace balanced;

namespace {

bool split_host_port(const std::string& listen, std::string& host, uint16_t& port) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return false;
  host = listen.substr(0, colon);
  const auto parsed = core::parse_int64(listen.substr(colon + 1));
  if (!parsed || *parsed < 0 || *parsed > 65535) return false;
  port = static_cast<uint16_t>(*parsed);
  return true;
}

int fail(std::string_view message) {
  observe::log(observe::LogLevel::error, message);
  return 1;
}

}  // namespace


int main(int argc, char** argv) {
  CLI::App app{"balanced: real-time account balances"};
  std::string listen = "127.0.0.1:8080";
  std::string db = "sqlite:./data/balanced.db";
  std::string cache_kind = "memory";
  size_t cache_entries_max = 10'000'000;
  std::string default_currency = "USD";
  size_t threads = std::max(1u, std::thread::hardware_concurrency());
  engine::EngineOptions engine_options;
  http::ServerOptions server_options;
  std::string synchronous = "full";
  storage::SqliteOptions sqlite_options;
  std::string log_level = "info";
  int64_t drain_grace_ms = 5000;

  app.add_option("--listen", listen, "HOST:PORT to serve on")->envname("BALANCED_LISTEN");
  app.add_option("--db", db, "sqlite:PATH")->envname("BALANCED_DB");
  app.add_option("--cache", cache_kind, "memory or none")
      ->envname("BALANCED_CACHE")
      ->check(CLI::IsMember({"memory", "none"}));
  app.add_option("--cache-entries-max", cache_entries_max, "accounts the memory cache holds")
      ->envname("BALANCED_CACHE_ENTRIES_MAX");
  app.add_option("--default-currency", default_currency, "currency of new accounts")
      ->envname("BALANCED_DEFAULT_CURRENCY");
  app.add_option("--threads", threads, "HTTP worker threads")
      ->envname("BALANCED_THREADS")
      ->check(CLI::Range(1, 256));
  app.add_option("--queue-depth-max", engine_options.queue_depth_max,
                 "operations waiting for commit before 503 overloaded")
      ->envname("BALANCED_QUEUE_DEPTH_MAX")
      ->check(CLI::Range(1, 10'000'000));
  app.add_option("--batch-operations-max", engine_options.batch_operations_max,
                 "operations per commit at most")
      ->envname("BALANCED_BATCH_OPERATIONS_MAX")
      ->check(CLI::Range(1, 100'000));
  app.add_option("--body-bytes-max", server_options.body_bytes_max, "request body limit")
      ->envname("BALANCED_BODY_BYTES_MAX")
      ->check(CLI::Range(256, 16 * 1024 * 1024));
  app.add_option("--connections-max", server_options.connections_max, "open connections limit")
      ->envname("BALANCED_CONNECTIONS_MAX");
  app.add_option("--read-timeout-ms", server_options.read_timeout_ms,
                 "a connection idle, or slow to send a request or take a response, this long "
                 "is closed (checked every second)")
      ->envname("BALANCED_READ_TIMEOUT_MS")
      ->check(CLI::Range(100, 3'600'000));
  app.add_option("--sqlite-synchronous", synchronous,
                 "full (fsync every commit) or normal (survives a crash, not a power cut)")
      ->envname("BALANCED_SQLITE_SYNCHRONOUS")
      ->check(CLI::IsMember({"full", "normal"}));
  app.add_option("--materialize-interval-ms", sqlite_options.materialize_interval_ms,
                 "how long committed batches gather before the ledger tables are updated")
      ->envname("BALANCED_MATERIALIZE_INTERVAL_MS")
      ->check(CLI::Range(1, 60'000));
  app.add_option("--log-level", log_level, "debug, info, warn or error")
      ->envname("BALANCED_LOG_LEVEL")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  app.add_option("--drain-grace-ms", drain_grace_ms, "time in-flight requests get on SIGTERM")
      ->envname("BALANCED_DRAIN_GRACE_MS");
  CLI11_PARSE(app, argc, argv);

  observe::init_logging(log_level);
  if (!core::is_valid_currency(default_currency)) return fail("--default-currency: not ISO 4217");
  if (!split_host_port(listen, server_options.host, server_options.port)) {
    return fail("--listen: expected HOST:PORT");
  }
  server_options.threads = threads;
  if (!db.starts_with("sqlite:")) return fail("--db: expected sqlite:PATH");

  // Block the stop signals in every thread; main waits for them with sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  sqlite_options.path = db.substr(std::string_view("sqlite:").size());
  sqlite_options.synchronous_full = synchronous == "full";
  sqlite_options.read_connections_max = threads * 2;
  const auto parent = std::filesystem::path(sqlite_options.path).parent_path();
  std::error_code dir_error;
  if (!parent.empty()) std::filesystem::create_directories(parent, dir_error);
  auto store = storage::open_sqlite_store(sqlite_options);
  if (!store.ok()) return fail("cannot open the database: " + store.error().detail);

  std::unique_ptr<cache::Cache> cache;
  if (cache_kind == "memory") {
    cache = std::make_unique<cache::MemoryCache>(cache_entries_max);
  } else {
    cache = std::make_unique<cache::NoCache>();
  }

  observe::Metrics metrics;
  metrics.on_scrape([&metrics, &cache] {
    const auto stats = cache->stats();
    metrics.cache_hits.Set(static_cast<double>(stats.hits));
    metrics.cache_misses.Set(static_cast<double>(stats.misses));
    metrics.cache_entries.Set(static_cast<double>(stats.entries));
  });
  engine::SystemClock clock;
  engine::Engine engine(*store.value(), *cache, clock, &metrics, engine_options);
  api::Api api(engine, metrics, api::ApiOptions{.default_currency = default_currency});
  http::Server server(server_options, api);
  if (auto status = server.start(); !status.ok()) return fail(status.detail());

  observe::log(observe::LogLevel::info, "balanced serving",
               {{"listen", server_options.host + ":" + std::to_string(server.port())},
                {"db", db},
                {"cache", cache_kind},
                {"threads", std::to_string(threads)}});

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  observe::log(observe::LogLevel::info, "draining", {{"signal", std::to_string(signal_number)}});
  api.set_draining();
  server.stop_accepting();
  engine.drain();
  server.shutdown(drain_grace_ms);
  observe::log(observe::LogLevel::info, "stopped");
  return 0;
}
