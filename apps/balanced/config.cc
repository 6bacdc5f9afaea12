#include "config.h"

#include "core/validate.h"
#include "flags/redis_flags.h"
#include "net/url.h"
#include "service/runtime.h"

namespace balanced::app {

void add_flags(CLI::App& app, Config& config) {
  app.add_option("--listen", config.listen, "HOST:PORT to serve the API on")->envname("BALANCED_LISTEN");
  app.add_option("--admin-listen", config.admin_listen,
                 "HOST:PORT for /metrics, /healthz and /readyz apart from the API (default: "
                 "all three on the API listener)")
      ->envname("BALANCED_ADMIN_LISTEN");
  app.add_flag("--trust-network", config.trust_network,
               "serve on a non-loopback address without token checks: only the gateway can "
               "reach it (a NetworkPolicy says so)")
      ->envname("BALANCED_TRUST_NETWORK");
  flags::add_token_flags(app, config.token_flags, "BALANCED_");
  app.add_option("--db", config.store.url,
                 "sqlite:PATH or mysql://USER:PASSWORD@HOST:PORT/DB[?tls=disabled|required|verify-ca|"
                 "verify-identity&tls-ca=FILE]")
      ->envname("BALANCED_DB");
  app.add_option("--db-password-file", config.store.password_file,
                 "file holding the MySQL password (replaces the one in --db; read again for every "
                 "new connection, so a rotated password needs no restart)")
      ->envname("BALANCED_DB_PASSWORD_FILE");
  app.add_option("--mysql-committers", config.store.mysql.committer_connections,
                 "MySQL connections committing batches at once")
      ->envname("BALANCED_MYSQL_COMMITTERS")
      ->check(CLI::Range(1, 64));
  app.add_option("--mysql-read-connections", config.store.mysql.read_connections_max,
                 "MySQL connections for reads, at most")
      ->envname("BALANCED_MYSQL_READ_CONNECTIONS")
      ->check(CLI::Range(1, 1024));
  app.add_option("--cache", config.cache.url,
                 "memory, none, redis[s]://[USER[:PASSWORD]@]HOST:PORT or "
                 "redis[s]-cluster://[USER[:PASSWORD]@]HOST:PORT,HOST:PORT,... (rediss: TLS)")
      ->envname("BALANCED_CACHE");
  flags::add_redis_security_flags(app, config.cache_security, "cache", "BALANCED_CACHE_");
  app.add_option("--cache-entries-max", config.cache.memory_entries_max,
                 "accounts the memory cache holds")
      ->envname("BALANCED_CACHE_ENTRIES_MAX");
  app.add_option("--cache-ttl-ms", config.cache.ttl_ms, "Redis entry lifetime")
      ->envname("BALANCED_CACHE_TTL_MS")
      ->check(CLI::Range(int64_t{1000}, int64_t{30} * 86'400'000));
  app.add_option("--redis-timeout-ms", config.cache.redis_timeout_ms,
                 "bound on a Redis connect or reply; a slower Redis counts as down")
      ->envname("BALANCED_REDIS_TIMEOUT_MS")
      ->check(CLI::Range(10, 10'000));
  app.add_option("--singleton-interval-ms", config.singleton_interval_ms,
                 "how often the lease holder runs the singleton jobs (hold expiry; MySQL audit sealing)")
      ->envname("BALANCED_SINGLETON_INTERVAL_MS")
      ->check(CLI::Range(10, 600'000));
  app.add_option("--hold-expiry-s", config.hold_expiry_s,
                 "a hold's life when POST /holds names no expiresInSeconds")
      ->envname("BALANCED_HOLD_EXPIRY_S")
      ->check(CLI::Range(int64_t{1}, core::hold_expiry_s_max));
  app.add_option("--hold-expiry-batch-max", config.hold_expiry_batch_max,
                 "overdue holds the sweeper expires per run at most")
      ->envname("BALANCED_HOLD_EXPIRY_BATCH_MAX")
      ->check(CLI::Range(1, 100'000));
  app.add_flag("--unique-references", config.unique_references,
               "a deposit's or withdrawal's reference (per currency) may be committed once: another id with "
               "it is 409 duplicate_reference")
      ->envname("BALANCED_UNIQUE_REFERENCES");
  app.add_option("--risk-rules", config.risk_rules,
                 "a JSON file of risk rules ([{name, when, then: deny|review}]) every debit is decided by, reread "
                 "when it changes (a bad file keeps the rules before it)")
      ->envname("BALANCED_RISK_RULES");
  app.add_option("--risk-hook", config.risk_hook.url,
                 "POST the would-be transactions of every debit request (one call per batch) to this URL before "
                 "queueing them; its {decision: allow|review|deny, reason} is stored with each (https, or http to "
                 "loopback)")
      ->envname("BALANCED_RISK_HOOK");
  app.add_option("--risk-hook-timeout-ms", config.risk_hook.timeout_ms,
                 "the risk hook's answer within this, connecting included, or --risk-hook-failure decides")
      ->envname("BALANCED_RISK_HOOK_TIMEOUT_MS")
      ->check(CLI::Range(int64_t{10}, int64_t{10'000}));
  app.add_option("--risk-hook-failure", config.risk_hook_failure,
                 "what a risk hook that fails or is late decides: allow or deny")
      ->envname("BALANCED_RISK_HOOK_FAILURE")
      ->check(CLI::IsMember({"allow", "deny"}));
  app.add_option("--risk-hook-ca-file", config.risk_hook.ca_file,
                 "https risk hook: a PEM CA bundle trusted besides the system's")
      ->envname("BALANCED_RISK_HOOK_CA_FILE");
  app.add_option("--risk-hook-threads", config.risk_hook.threads,
                 "risk hook calls at once, at most (each blocks a thread up to --risk-hook-timeout-ms)")
      ->envname("BALANCED_RISK_HOOK_THREADS")
      ->check(CLI::Range(1, 1024));
  app.add_option("--events-waits-max", config.events_waits_max,
                 "GET /events?wait= requests waiting at once, at most (more: 503 overloaded)")
      ->envname("BALANCED_EVENTS_WAITS_MAX")
      ->check(CLI::Range(1, 1'000'000));
  app.add_option("--events-streams-max", config.events_streams_max,
                 "GET /events/stream connections open at once, at most (more: 503 overloaded)")
      ->envname("BALANCED_EVENTS_STREAMS_MAX")
      ->check(CLI::Range(1, 1'000'000));
  app.add_option("--events-heartbeat-ms", config.events_heartbeat_ms,
                 "GET /events/stream: a comment line after this long without an event keeps the stream open")
      ->envname("BALANCED_EVENTS_HEARTBEAT_MS")
      ->check(CLI::Range(int64_t{100}, int64_t{600'000}));
  app.add_flag("--events-relay", config.events_relay,
               "MySQL without Redis: this replica runs the relays (run it on one replica only; with Redis the "
               "lease holder does, on SQLite the one process)")
      ->envname("BALANCED_EVENTS_RELAY");
  app.add_option("--events-amqp", config.amqp.url,
                 "publish every event, in order and confirmed, to this broker: amqp[s]://USER@HOST[:PORT][/VHOST]")
      ->envname("BALANCED_EVENTS_AMQP");
  app.add_option("--events-amqp-password-file", config.amqp.password_file,
                 "the broker user's password (reread at each connection; none: guest)")
      ->envname("BALANCED_EVENTS_AMQP_PASSWORD_FILE");
  app.add_option("--events-amqp-exchange", config.amqp.exchange,
                 "the durable topic exchange events are published to (routing key: the event type)")
      ->envname("BALANCED_EVENTS_AMQP_EXCHANGE");
  app.add_option("--events-amqp-ca-file", config.amqp.ca_file,
                 "amqps://: PEM CAs trusted for the broker besides the system's")
      ->envname("BALANCED_EVENTS_AMQP_CA_FILE");
  app.add_option("--events-amqp-timeout-ms", config.amqp.timeout_ms,
                 "connecting, logging in, and the broker's confirms of one round (then retried)")
      ->envname("BALANCED_EVENTS_AMQP_TIMEOUT_MS")
      ->check(CLI::Range(int64_t{100}, int64_t{120'000}));
  app.add_option("--webhook-url", config.webhook.url,
                 "POST every event, in order, to this https:// URL (http:// to a loopback host), signed")
      ->envname("BALANCED_WEBHOOK_URL");
  app.add_option("--webhook-secret-file", config.webhook.secret_file,
                 "the webhook's signing secrets, one per line (reread at each delivery)")
      ->envname("BALANCED_WEBHOOK_SECRET_FILE");
  app.add_option("--webhook-ca-file", config.webhook.ca_file,
                 "PEM CA certificates trusted for the webhook's server besides the system's")
      ->envname("BALANCED_WEBHOOK_CA_FILE");
  app.add_option("--webhook-timeout-ms", config.webhook.timeout_ms,
                 "one webhook POST, connection included; slower is a failure (retried)")
      ->envname("BALANCED_WEBHOOK_TIMEOUT_MS")
      ->check(CLI::Range(int64_t{100}, int64_t{120'000}));
  app.add_option("--events-retention-h", config.events_retention_h,
                 "hours an event is kept in the change feed (fractions allowed); older ones are deleted")
      ->envname("BALANCED_EVENTS_RETENTION_H")
      ->check(CLI::Range(0.0001, 87'600.0));
  app.add_option("--lease-ttl-ms", config.lease_ttl_ms, "lifetime of the singleton lease in Redis")
      ->envname("BALANCED_LEASE_TTL_MS")
      ->check(CLI::Range(100, 600'000));
  app.add_option("--default-currency", config.default_currency, "currency of new accounts")
      ->envname("BALANCED_DEFAULT_CURRENCY");
  app.add_option("--access-log", config.access_log,
                 "on: one ECS JSON line per request on stdout, with the gateway's request and "
                 "trace ids; off (the gateway logs every request already)")
      ->envname("BALANCED_ACCESS_LOG")
      ->check(CLI::IsMember({"on", "off"}));
  app.add_option("--threads", config.threads, "HTTP worker threads")
      ->envname("BALANCED_THREADS")
      ->check(CLI::Range(1, 256));
  app.add_option("--queue-depth-max", config.engine.queue_depth_max,
                 "operations waiting for commit before 503 overloaded")
      ->envname("BALANCED_QUEUE_DEPTH_MAX")
      ->check(CLI::Range(1, 10'000'000));
  app.add_option("--storage-deadline-ms", config.engine.storage_deadline_ms,
                 "a write not answered by storage this long after it arrived is answered 503 "
                 "unavailable with Retry-After (keep it below the gateway's upstream timeout)")
      ->envname("BALANCED_STORAGE_DEADLINE_MS")
      ->check(CLI::Range(int64_t{100}, int64_t{600'000}));
  app.add_option("--batch-operations-max", config.engine.batch_operations_max,
                 "operations per commit at most")
      ->envname("BALANCED_BATCH_OPERATIONS_MAX")
      ->check(CLI::Range(1, 100'000));
  app.add_option("--body-bytes-max", config.server.body_bytes_max, "request body limit")
      ->envname("BALANCED_BODY_BYTES_MAX")
      ->check(CLI::Range(256, 16 * 1024 * 1024));
  app.add_option("--connections-max", config.server.connections_max, "open connections limit")
      ->envname("BALANCED_CONNECTIONS_MAX");
  app.add_option("--read-timeout-ms", config.read_timeout_ms,
                 "a connection idle, or slow to send a request or take a response, this long "
                 "is closed (checked every second)")
      ->envname("BALANCED_READ_TIMEOUT_MS")
      ->check(CLI::Range(100, 3'600'000));
  app.add_option("--sqlite-synchronous", config.synchronous,
                 "full (fsync every commit) or normal (survives a crash, not a power cut)")
      ->envname("BALANCED_SQLITE_SYNCHRONOUS")
      ->check(CLI::IsMember({"full", "normal"}));
  app.add_option("--materialize-interval-ms", config.store.sqlite.materialize_interval_ms,
                 "how long committed batches gather before the ledger tables are updated")
      ->envname("BALANCED_MATERIALIZE_INTERVAL_MS")
      ->check(CLI::Range(1, 60'000));
  app.add_option("--log-level", config.log_level, "debug, info, warn or error")
      ->envname("BALANCED_LOG_LEVEL")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  app.add_option("--drain-grace-ms", config.drain_grace_ms, "time in-flight requests get on SIGTERM")
      ->envname("BALANCED_DRAIN_GRACE_MS");
  app.add_option("--drain-delay-ms", config.drain_delay_ms,
                 "on SIGTERM, /readyz fails at once and requests are still served this long before "
                 "the listener closes: the time load balancers take to stop sending (replaces a "
                 "preStop sleep)")
      ->envname("BALANCED_DRAIN_DELAY_MS")
      ->check(CLI::Range(int64_t{0}, int64_t{600'000}));
}

Status finish(Config& config) {
  if (!core::is_valid_currency(config.default_currency)) {
    return Status(Code::invalid_request, "--default-currency: not ISO 4217");
  }
  if (!service::set_listen(config.listen, config.server)) {
    return Status(Code::invalid_request, "--listen: expected HOST:PORT");
  }
  if (config.token_flags.partly_given()) {
    return Status(Code::invalid_request, "--jwt-issuer and --jwt-audience need --jwks");
  }
  if (config.webhook.url.empty() != config.webhook.secret_file.empty()) {
    return Status(Code::invalid_request, "--webhook-url and --webhook-secret-file go together");
  }
  if (!net::is_loopback_host(config.server.host) && !config.trust_network && !config.token_flags.given()) {
    return Status(Code::invalid_request,
                  "--listen " + config.listen +
                      " is not a loopback address: give --jwks, --jwt-issuer and --jwt-audience (token "
                      "checks of its own), or --trust-network (only the gateway can reach it)");
  }
  config.server.threads = config.threads;
  config.server.idle_timeout_ms = config.read_timeout_ms;
  config.server.head_timeout_ms = config.read_timeout_ms;
  config.server.body_timeout_ms = config.read_timeout_ms;
  config.server.thread_name = "http";
  config.store.sqlite.synchronous_full = config.synchronous == "full";
  config.store.sqlite.read_connections_max = config.threads * 2;
  // A read waits for a silent MySQL no longer than a write does, rounded up to seconds.
  config.store.mysql.reader_timeout_s =
      static_cast<unsigned>(std::max<int64_t>(1, (config.engine.storage_deadline_ms + 999) / 1000));
  return {};
}

}  // namespace balanced::app
