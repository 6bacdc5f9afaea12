// balanced: the balance service. Parses flags, picks the concrete store and cache,
// wires them into the engine, the API and the HTTP server, and drains on SIGTERM.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <random>
#include <thread>

#include "api/api.h"
#include "cache/open.h"
#include "cache/stats.h"
#include "core/validate.h"
#include "engine/engine.h"
#include "engine/stats.h"
#include "http/server.h"
#include "net/url.h"
#include "jobs/singleton.h"
#include "observe/log.h"
#include "auth/guarded_handler.h"
#include "flags/redis_flags.h"
#include "service/runtime.h"
#include "flags/token_checks.h"
#include "storage/health.h"
#include "storage/open.h"

using namespace balanced;
using service::fail;

namespace {

// Unique per process: names this replica as a lease holder.
std::string lease_owner() {
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  std::random_device random;
  return std::string(host) + ":" + std::to_string(::getpid()) + ":" + std::to_string(random());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"balanced: real-time account balances"};
  std::string listen = "127.0.0.1:8080";
  std::string admin_listen;
  bool trust_network = false;
  flags::TokenFlags token_flags;
  storage::StoreSettings store_settings{.url = "sqlite:./data/balanced.db"};
  cache::CacheSettings cache_settings;
  std::string default_currency = "USD";
  size_t threads = std::max(1u, std::thread::hardware_concurrency());
  engine::EngineOptions engine_options;
  http::ServerOptions server_options;
  std::string synchronous = "full";
  std::string log_level = "info";
  int64_t drain_grace_ms = 5000;
  int64_t drain_delay_ms = 0;
  int64_t read_timeout_ms = 30000;
  int64_t singleton_interval_ms = 1000;
  int64_t lease_ttl_ms = 10'000;
  std::string access_log = "off";

  app.add_option("--listen", listen, "HOST:PORT to serve the API on")->envname("BALANCED_LISTEN");
  app.add_option("--admin-listen", admin_listen,
                 "HOST:PORT for /metrics, /healthz and /readyz apart from the API (default: "
                 "all three on the API listener)")
      ->envname("BALANCED_ADMIN_LISTEN");
  app.add_flag("--trust-network", trust_network,
               "serve on a non-loopback address without token checks: only the gateway can "
               "reach it (a NetworkPolicy says so)")
      ->envname("BALANCED_TRUST_NETWORK");
  flags::add_token_flags(app, token_flags, "BALANCED_");
  app.add_option("--db", store_settings.url,
                 "sqlite:PATH or mysql://USER:PASSWORD@HOST:PORT/DB[?tls=disabled|required|verify-ca|"
                 "verify-identity&tls-ca=FILE]")
      ->envname("BALANCED_DB");
  app.add_option("--db-password-file", store_settings.password_file,
                 "file holding the MySQL password (replaces the one in --db; read again for every "
                 "new connection, so a rotated password needs no restart)")
      ->envname("BALANCED_DB_PASSWORD_FILE");
  app.add_option("--mysql-committers", store_settings.mysql.committer_connections,
                 "MySQL connections committing batches at once")
      ->envname("BALANCED_MYSQL_COMMITTERS")
      ->check(CLI::Range(1, 64));
  app.add_option("--mysql-read-connections", store_settings.mysql.read_connections_max,
                 "MySQL connections for reads, at most")
      ->envname("BALANCED_MYSQL_READ_CONNECTIONS")
      ->check(CLI::Range(1, 1024));
  app.add_option("--cache", cache_settings.url,
                 "memory, none, redis[s]://[USER[:PASSWORD]@]HOST:PORT or "
                 "redis[s]-cluster://[USER[:PASSWORD]@]HOST:PORT,HOST:PORT,... (rediss: TLS)")
      ->envname("BALANCED_CACHE");
  redis::SecurityOverrides cache_security;
  flags::add_redis_security_flags(app, cache_security, "cache", "BALANCED_CACHE_");
  app.add_option("--cache-entries-max", cache_settings.memory_entries_max,
                 "accounts the memory cache holds")
      ->envname("BALANCED_CACHE_ENTRIES_MAX");
  app.add_option("--cache-ttl-ms", cache_settings.ttl_ms, "Redis entry lifetime")
      ->envname("BALANCED_CACHE_TTL_MS")
      ->check(CLI::Range(int64_t{1000}, int64_t{30} * 86'400'000));
  app.add_option("--redis-timeout-ms", cache_settings.redis_timeout_ms,
                 "bound on a Redis connect or reply; a slower Redis counts as down")
      ->envname("BALANCED_REDIS_TIMEOUT_MS")
      ->check(CLI::Range(10, 10'000));
  app.add_option("--singleton-interval-ms", singleton_interval_ms,
                 "how often the lease holder runs the singleton job (MySQL audit sealing)")
      ->envname("BALANCED_SINGLETON_INTERVAL_MS")
      ->check(CLI::Range(10, 600'000));
  app.add_option("--lease-ttl-ms", lease_ttl_ms, "lifetime of the singleton lease in Redis")
      ->envname("BALANCED_LEASE_TTL_MS")
      ->check(CLI::Range(100, 600'000));
  app.add_option("--default-currency", default_currency, "currency of new accounts")
      ->envname("BALANCED_DEFAULT_CURRENCY");
  app.add_option("--access-log", access_log,
                 "on: one ECS JSON line per request on stdout, with the gateway's request and "
                 "trace ids; off (the gateway logs every request already)")
      ->envname("BALANCED_ACCESS_LOG")
      ->check(CLI::IsMember({"on", "off"}));
  app.add_option("--threads", threads, "HTTP worker threads")
      ->envname("BALANCED_THREADS")
      ->check(CLI::Range(1, 256));
  app.add_option("--queue-depth-max", engine_options.queue_depth_max,
                 "operations waiting for commit before 503 overloaded")
      ->envname("BALANCED_QUEUE_DEPTH_MAX")
      ->check(CLI::Range(1, 10'000'000));
  engine_options.storage_deadline_ms = 5000;
  app.add_option("--storage-deadline-ms", engine_options.storage_deadline_ms,
                 "a write not answered by storage this long after it arrived is answered 503 "
                 "unavailable with Retry-After (keep it below the gateway's upstream timeout)")
      ->envname("BALANCED_STORAGE_DEADLINE_MS")
      ->check(CLI::Range(int64_t{100}, int64_t{600'000}));
  app.add_option("--batch-operations-max", engine_options.batch_operations_max,
                 "operations per commit at most")
      ->envname("BALANCED_BATCH_OPERATIONS_MAX")
      ->check(CLI::Range(1, 100'000));
  app.add_option("--body-bytes-max", server_options.body_bytes_max, "request body limit")
      ->envname("BALANCED_BODY_BYTES_MAX")
      ->check(CLI::Range(256, 16 * 1024 * 1024));
  app.add_option("--connections-max", server_options.connections_max, "open connections limit")
      ->envname("BALANCED_CONNECTIONS_MAX");
  app.add_option("--read-timeout-ms", read_timeout_ms,
                 "a connection idle, or slow to send a request or take a response, this long "
                 "is closed (checked every second)")
      ->envname("BALANCED_READ_TIMEOUT_MS")
      ->check(CLI::Range(100, 3'600'000));
  app.add_option("--sqlite-synchronous", synchronous,
                 "full (fsync every commit) or normal (survives a crash, not a power cut)")
      ->envname("BALANCED_SQLITE_SYNCHRONOUS")
      ->check(CLI::IsMember({"full", "normal"}));
  app.add_option("--materialize-interval-ms", store_settings.sqlite.materialize_interval_ms,
                 "how long committed batches gather before the ledger tables are updated")
      ->envname("BALANCED_MATERIALIZE_INTERVAL_MS")
      ->check(CLI::Range(1, 60'000));
  app.add_option("--log-level", log_level, "debug, info, warn or error")
      ->envname("BALANCED_LOG_LEVEL")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  app.add_option("--drain-grace-ms", drain_grace_ms, "time in-flight requests get on SIGTERM")
      ->envname("BALANCED_DRAIN_GRACE_MS");
  app.add_option("--drain-delay-ms", drain_delay_ms,
                 "on SIGTERM, /readyz fails at once and requests are still served this long before "
                 "the listener closes: the time load balancers take to stop sending (replaces a "
                 "preStop sleep)")
      ->envname("BALANCED_DRAIN_DELAY_MS")
      ->check(CLI::Range(int64_t{0}, int64_t{600'000}));
  CLI11_PARSE(app, argc, argv);

  observe::init_logging(log_level);
  if (!core::is_valid_currency(default_currency)) return fail("--default-currency: not ISO 4217");
  if (!service::set_listen(listen, server_options)) return fail("--listen: expected HOST:PORT");
  if (token_flags.partly_given()) return fail("--jwt-issuer and --jwt-audience need --jwks");
  if (!net::is_loopback_host(server_options.host) && !trust_network && !token_flags.given()) {
    return fail("--listen " + listen +
                " is not a loopback address: give --jwks, --jwt-issuer and --jwt-audience (token "
                "checks of its own), or --trust-network (only the gateway can reach it)");
  }
  server_options.threads = threads;
  server_options.idle_timeout_ms = read_timeout_ms;
  server_options.head_timeout_ms = read_timeout_ms;
  server_options.body_timeout_ms = read_timeout_ms;
  server_options.thread_name = "http";

  service::block_signals();

  store_settings.sqlite.synchronous_full = synchronous == "full";
  store_settings.mysql.reader_timeout_s =
      static_cast<unsigned>(std::max<int64_t>(1, (engine_options.storage_deadline_ms + 999) / 1000));
  store_settings.sqlite.read_connections_max = threads * 2;
  observe::Registry registry;
  auto opened = storage::open_store(store_settings, &registry);
  if (!opened.ok()) return fail("cannot open the database: " + opened.error().detail);
  storage::Store& store = *opened.value().store;
  if (opened.value().shared) {
    // A database that is down may come back (the store reconnects, /readyz says when);
    // a schema older than this build will not, nor will refused credentials, database
    // name or certificate (Code::internal), so refuse to serve on them.
    const Status ping = store.ping();
    if (!ping.ok() && (ping.code() == Code::internal ||
                       ping.detail().find("balancectl migrate") != std::string::npos)) {
      return fail(ping.detail());
    }
    if (!ping.ok()) {
      observe::log(observe::LogLevel::warn, "database not reachable yet", {{"error.message", ping.detail()}});
    }
  }

  std::shared_ptr<redis::Client> cache_redis;
  if (cache::uses_redis(cache_settings)) {
    auto client = flags::open_redis("cache", cache_settings.url, cache_security,
                                      cache_settings.redis_timeout_ms, registry, "balanced");
    if (!client.ok()) return fail(client.error().detail);
    cache_redis = std::move(client.value());
  }
  auto cache = cache::open_cache(cache_settings, std::move(cache_redis));
  if (!cache.ok()) return fail(cache.error().detail);

  cache::Cache& the_cache = *cache.value().cache;
  cache::register_cache_metrics(registry, the_cache);
  engine::EngineStats engine_stats(registry);
  engine::SystemClock clock;
  engine::Engine engine(store, the_cache, clock, &engine_stats, engine_options);

  // A shared database's singleton job (MySQL audit sealing) runs on one replica at a
  // time: the holder of a Redis lease when there is a Redis, else every replica in turn
  // under the chain's row lock.
  std::unique_ptr<jobs::Lease> lease;
  std::optional<jobs::SingletonStats> singleton_stats;
  std::unique_ptr<jobs::SingletonRunner> singleton;
  if (opened.value().singleton_job) {
    if (cache.value().redis) {
      lease = std::make_unique<jobs::RedisLease>(
          *cache.value().redis,
          jobs::RedisLeaseOptions{.owner = lease_owner(), .ttl_ms = lease_ttl_ms});
    } else {
      lease = std::make_unique<jobs::EveryoneLeads>();
    }
    singleton_stats.emplace(registry);
    singleton = std::make_unique<jobs::SingletonRunner>(*lease, *opened.value().singleton_job,
                                                        &*singleton_stats, singleton_interval_ms);
  }
  // /readyz and balanced_storage_up: the last ping's verdict, never a wait on the store.
  storage::StorageHealth health(store, &registry, {});
  http::AdminEndpoints admin(registry, [&health] { return health.status(); });
  service::AdminListener admin_listener(admin);
  if (!admin_listen.empty()) {
    if (auto status = admin_listener.start(admin_listen); !status.ok()) return fail(status.detail());
  }
  api::Api api(engine, registry, admin,
               api::ApiOptions{.default_currency = default_currency,
                               .metrics_on_api_port = admin_listen.empty(),
                               .access_log = access_log == "on"});
  // DESIGN.md section 9: with token checks of its own, the API sits behind the gate.
  std::optional<flags::TokenChecks> token_checks;
  std::optional<auth::GuardedHandler> guarded;
  http::Handler* handler = &api;
  if (token_flags.given()) {
    auto checks = flags::open_token_checks(token_flags, registry, "balanced");
    if (!checks.ok()) return fail(checks.error().detail);
    token_checks.emplace(std::move(checks.value()));
    guarded.emplace(api, *token_checks->gate);
    handler = &*guarded;
  }
  http::Server server(server_options, *handler);
  if (auto status = server.start(); !status.ok()) return fail(status.detail());

  observe::log(observe::LogLevel::info, "balanced serving",
               {{"listen", net::HostPort{server_options.host, server.port()}.text()},
                {"admin_listen", admin_listen.empty() ? "(api listener)" : admin_listen},
                {"db", storage::mysql::redact_url(store_settings.url)},
                {"cache", cache_settings.url},
                {"committers", std::to_string(store.apply_concurrency())},
                {"threads", std::to_string(threads)},
                {"token_checks", token_flags.given() ? "on" : "off"}});

  const int signal_number = service::wait_for_stop({});
  observe::log(observe::LogLevel::info, "draining",
               {{"signal", std::to_string(signal_number)}, {"drain_delay_ms", std::to_string(drain_delay_ms)}});
  admin.set_draining();
  // Readiness is off; the endpoint's removal takes a while to reach every kube-proxy and
  // the gateways' health checks. Until then new connections still come, and are served.
  std::this_thread::sleep_for(std::chrono::milliseconds(drain_delay_ms));
  server.stop_accepting();
  engine.drain();
  if (singleton) singleton->stop();
  server.shutdown(drain_grace_ms);
  the_cache.stop();  // answers reads still waiting on Redis before the server goes
  admin_listener.stop();
  observe::log(observe::LogLevel::info, "stopped");
  return 0;
}
