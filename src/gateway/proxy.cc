// The gateway's upstream side: health checks and keep-alive forwarding. Beast and Asio
// templates for the gateway live only here.
#include "gateway/proxy.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <algorithm>
#include <chrono>
#include <optional>
#include <random>

#include "core/monotonic.h"
#include "observe/log.h"

namespace balanced::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// Hop-by-hop and framing headers (RFC 9110 7.6.1), never passed along. And Expect: the
// gateway answered the client's 100-continue itself and sends the upstream the whole
// body at once; passed on, it could draw a 100 from the upstream that this client would
// take for the answer.
bool is_hop_header(std::string_view name) {
  for (std::string_view hop : {"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
                               "Proxy-Authorization", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
                               "Content-Length", "Host", "Expect"}) {
    if (http::iequals(name, hop)) return true;
  }
  return false;
}

}  // namespace

// ---------------------------------------------------------------- Upstreams: health checks

void Upstreams::check_loop(HealthOptions options) {
  for (;;) {
    // One round: every replica in rotation or waiting for it checked at once, each within
    // the timeout. Draining ones are not: they take no new requests.
    asio::io_context context;
    std::vector<int> passed(replicas_.size(), 0);
    std::vector<bool> checked(replicas_.size(), false);
    struct Check {
      tcp::socket socket;
      beast::flat_buffer buffer;
      bhttp::request<bhttp::empty_body> request;
      bhttp::response<bhttp::string_body> response;
      explicit Check(asio::io_context& c) : socket(c) {}
    };
    std::vector<std::unique_ptr<Check>> checks;
    for (size_t i = 0; i < replicas_.size(); ++i) {
      if (replicas_[i]->state.load() != Replica::State::active) continue;
      const Replica::Target target = replicas_[i]->target();
      beast::error_code ec;
      const auto address = asio::ip::make_address(target.address.host, ec);
      if (ec) continue;  // the table holds addresses only
      checked[i] = true;
      auto check = std::make_unique<Check>(context);
      Check& c = *check;
      checks.push_back(std::move(check));
      c.request = {bhttp::verb::get, "/readyz", 11};
      c.request.set(bhttp::field::host, "balanced");
      c.socket.async_connect(tcp::endpoint(address, target.address.port), [&c, &passed, i](beast::error_code e) {
        if (e) return;
        bhttp::async_write(c.socket, c.request, [&c, &passed, i](beast::error_code w, size_t) {
          if (w) return;
          bhttp::async_read(c.socket, c.buffer, c.response, [&c, &passed, i](beast::error_code r, size_t) {
            passed[i] = !r && c.response.result_int() == 200;
          });
        });
      });
    }
    const auto round_started = Clock::now();
    context.run_for(std::chrono::milliseconds(options.timeout_ms));
    for (size_t i = 0; i < replicas_.size(); ++i) {
      if (!checked[i]) continue;
      Replica& replica = *replicas_[i];
      if (passed[i]) {
        replica.failures = 0;
        set_healthy(replica, true, "");
      } else if (++replica.failures >= options.failures_to_eject) {
        set_healthy(replica, false, "health check failed");
      }
    }
    checks.clear();
    {
      MutexLock lock(table_mutex_);
      release_drained();
    }
    MutexLock lock(stop_mutex_);
    if (lock.wait_for(stop_wake_, round_started + std::chrono::milliseconds(options.interval_ms) - Clock::now(),
                      [&]() REQUIRES(stop_mutex_) { return stopping_; })) {
      return;
    }
  }
}

// ---------------------------------------------------------------- Proxy

ProxyStats::ProxyStats(observe::Registry& registry, const std::string& prefix)
    : upstream_seconds(registry.histogram(prefix + "_upstream_duration_seconds",
                                          "Time from sending a request to a replica to its whole answer",
                                          observe::Registry::latency_buckets())),
      retries(registry.counter(prefix + "_upstream_retries_total",
                               "Requests retried on another replica after a connection failure")),
      failures(registry.counter(prefix + "_upstream_failures_total",
                                "Requests answered 502: the connection failed and a retry was not safe or failed too")),
      timeouts(registry.counter(prefix + "_upstream_timeouts_total",
                                "Requests answered 504: no answer within --upstream-timeout-ms")) {}

namespace {

struct Connection {
  explicit Connection(asio::io_context& context) : socket(context) {}
  tcp::socket socket;
  beast::flat_buffer buffer;
  int64_t idle_since_ms = 0;
  std::string name;         // the replica's host:port (the Host header sent)
  uint64_t generation = 0;  // of the slot when connected: another means another address
};

struct WorkerPools {
  explicit WorkerPools(asio::io_context& c) : context(c) {}
  asio::io_context& context;
  std::vector<std::vector<std::unique_ptr<Connection>>> idle;  // by replica slot
};

}  // namespace

struct Proxy::Impl {
  Upstreams& upstreams;
  const ProxyOptions options;
  ProxyStats* stats;
  std::vector<std::unique_ptr<WorkerPools>> workers;
};

namespace {

using Parser = bhttp::response_parser<bhttp::string_body>;

// The head of a replica's answer as the gateway passes it on: hop-by-hop headers and its
// Server dropped.
void copy_head(const Parser::value_type& message, http::Response& response) {
  response.status = static_cast<int>(message.result_int());
  response.content_type = http::ContentType::copy_of(message[bhttp::field::content_type]);
  for (const auto& field : message) {
    const std::string_view name = field.name_string();
    if (is_hop_header(name) || http::iequals(name, "Content-Type") || http::iequals(name, "Server")) continue;
    response.headers.emplace_back(std::string(name), std::string(field.value()));
  }
}

// A streamed answer's body: its connection, owned from the head on, and never pooled.
class StreamedBody final : public UpstreamBody, public std::enable_shared_from_this<StreamedBody> {
 public:
  StreamedBody(std::unique_ptr<Connection> connection, std::unique_ptr<Parser> parser, int64_t idle_ms)
      : connection_(std::move(connection)),
        parser_(std::move(parser)),
        idle_timer_(connection_->socket.get_executor()),
        idle_ms_(idle_ms) {
    parser_->body_limit(boost::none);  // a stream's size is unbounded; what is held is one read
  }

  void read(Piece piece) override {
    if (ended_ || parser_->is_done()) {
      ended_ = true;
      return piece(std::nullopt);
    }
    idle_timer_.expires_after(std::chrono::milliseconds(idle_ms_));
    idle_timer_.async_wait([weak = weak_from_this()](beast::error_code ec) {
      auto self = weak.lock();
      // A wait that ended as a read completed and the next read re-armed the timer is
      // not the next read's.
      if (ec || !self || self->idle_timer_.expiry() > asio::steady_timer::clock_type::now()) return;
      beast::error_code ignored;
      self->connection_->socket.cancel(ignored);
    });
    bhttp::async_read_some(connection_->socket, connection_->buffer, *parser_,
                           [self = shared_from_this(), piece = std::move(piece)](beast::error_code ec, size_t) mutable {
                             self->idle_timer_.cancel();
                             if (ec) {
                               self->ended_ = true;
                               return piece(std::nullopt);
                             }
                             std::string& body = self->parser_->get().body();
                             if (body.empty()) return self->read(std::move(piece));  // a chunk's framing only
                             std::string out = std::move(body);
                             body.clear();
                             piece(std::move(out));
                           });
  }

  void close() override {
    ended_ = true;
    beast::error_code ignored;
    connection_->socket.cancel(ignored);
  }

 private:
  std::unique_ptr<Connection> connection_;
  std::unique_ptr<Parser> parser_;
  asio::steady_timer idle_timer_;
  const int64_t idle_ms_;
  bool ended_ = false;
};

class Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(Proxy::Impl& impl, WorkerPools& pools, http::Request&& request, bool retry_safe, bool stream,
           Proxy::Done done)
      : impl_(impl),
        pools_(pools),
        retry_safe_(retry_safe),
        stream_(stream),
        done_(std::move(done)),
        deadline_(pools.context),
        connect_timer_(pools.context),
        started_(Clock::now()) {
    request_.version(11);
    const auto verb = bhttp::string_to_verb(request.method);
    if (verb == bhttp::verb::unknown) {
      request_.method_string(request.method);
    } else {
      request_.method(verb);
    }
    request_.target(request.target);
    for (auto& [name, value] : request.headers) {
      if (!is_hop_header(name)) request_.insert(name, value);
    }
    request_.body() = std::move(request.body);
    request_.keep_alive(true);
    request_.prepare_payload();
  }

  void start(int64_t timeout_ms) {
    deadline_.expires_after(std::chrono::milliseconds(timeout_ms));
    deadline_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->finished_) return;
      self->timed_out_ = true;
      if (self->connection_) {
        beast::error_code ignored;
        self->connection_->socket.cancel(ignored);
      }
    });
    attempt(-1);
  }

 private:
  void attempt(int exclude) {
    replica_ = impl_.upstreams.choose(exclude);
    if (replica_ < 0 && exclude >= 0) replica_ = impl_.upstreams.choose(-1);
    if (replica_ < 0) {
      result_.result = attempts_ == 0 ? Forwarded::Result::no_replica : Forwarded::Result::failed;
      if (attempts_ > 0 && impl_.stats) impl_.stats->failures.Increment();
      return finish();
    }
    ++attempts_;
    Replica& replica = impl_.upstreams.at(static_cast<size_t>(replica_));
    result_.replica = replica.target().name;
    replica.in_flight.fetch_add(1, std::memory_order_relaxed);
    counted_ = true;
    auto& idle = pools_.idle[static_cast<size_t>(replica_)];
    const int64_t now = core::monotonic_ms();
    const uint64_t generation = replica.generation.load(std::memory_order_acquire);
    while (!idle.empty()) {
      std::unique_ptr<Connection> candidate = std::move(idle.back());
      idle.pop_back();
      // A connection to the slot's earlier address (a drained replica) is closed.
      if (candidate->generation == generation && now - candidate->idle_since_ms < impl_.options.idle_ms_max) {
        connection_ = std::move(candidate);
        reused_ = true;
        return send();
      }
    }
    reused_ = false;
    const Replica::Target target = replica.target();
    beast::error_code address_error;
    const auto address = asio::ip::make_address(target.address.host, address_error);
    if (address_error) return connection_failed(false);
    const tcp::endpoint endpoint(address, target.address.port);
    connection_ = std::make_unique<Connection>(pools_.context);
    connection_->name = target.name;
    connection_->generation = target.generation;
    connect_timer_.expires_after(std::chrono::milliseconds(impl_.options.connect_timeout_ms));
    connect_timer_.async_wait([self = shared_from_this(), connection = connection_.get()](beast::error_code ec) {
      if (ec || self->connection_.get() != connection || self->connected_) return;
      beast::error_code ignored;
      connection->socket.cancel(ignored);
    });
    connected_ = false;
    connection_->socket.async_connect(endpoint, [self = shared_from_this()](beast::error_code ec) {
      self->connect_timer_.cancel();
      if (self->timed_out_) return self->finish_timed_out();
      if (ec) return self->connection_failed(ec == asio::error::connection_refused || ec == asio::error::operation_aborted);
      self->connected_ = true;
      beast::error_code ignored;
      self->connection_->socket.set_option(tcp::no_delay(true), ignored);
      self->send();
    });
  }

  void send() {
    attempt_started_ = Clock::now();
    request_.set(bhttp::field::host, connection_->name);
    parser_ = std::make_unique<Parser>();
    parser_->body_limit(impl_.options.response_bytes_max);
    bhttp::async_write(connection_->socket, request_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (self->timed_out_) return self->finish_timed_out();
      if (ec) return self->connection_failed(false);
      if (self->stream_) {
        return bhttp::async_read_header(self->connection_->socket, self->connection_->buffer, *self->parser_,
                                        [self](beast::error_code read_ec, size_t) { self->on_head(read_ec); });
      }
      self->read_rest();
    });
  }

  void read_rest() {
    bhttp::async_read(connection_->socket, connection_->buffer, *parser_,
                      [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  // A stream's head: an event stream is handed over now; any other answer is read whole.
  void on_head(beast::error_code ec) {
    if (timed_out_ || ec) return on_read(ec);
    const auto& message = parser_->get();
    const std::string_view type = message[bhttp::field::content_type];
    if (message.result_int() != 200 || !type.starts_with("text/event-stream")) return read_rest();
    release_replica();
    result_.upstream_seconds = std::chrono::duration<double>(Clock::now() - attempt_started_).count();
    copy_head(message, result_.response);
    result_.result = Forwarded::Result::answered;
    result_.body = std::make_shared<StreamedBody>(std::move(connection_), std::move(parser_), impl_.options.stream_idle_ms);
    finish();
  }

  void on_read(beast::error_code ec) {
    if (timed_out_) return finish_timed_out();
    if (ec) {
      // Nothing of an answer yet: as a connection failure (the retry rule decides).
      if (!parser_->got_some()) return connection_failed(false);
      release_replica();
      result_.result = Forwarded::Result::failed;
      if (impl_.stats) impl_.stats->failures.Increment();
      return finish();
    }
    release_replica();
    result_.upstream_seconds = std::chrono::duration<double>(Clock::now() - attempt_started_).count();
    if (impl_.stats) impl_.stats->upstream_seconds.Observe(result_.upstream_seconds);
    auto message = parser_->release();
    http::Response& response = result_.response;
    copy_head(message, response);
    response.body = std::move(message.body());
    result_.result = Forwarded::Result::answered;
    auto& idle = pools_.idle[static_cast<size_t>(replica_)];
    if (message.keep_alive() && idle.size() < impl_.options.idle_per_replica_max) {
      connection_->idle_since_ms = core::monotonic_ms();
      idle.push_back(std::move(connection_));
    }
    connection_.reset();
    finish();
  }

  // `nothing_sent`: the connection was refused or its connect timed out, so the replica
  // received nothing and any request may go to another one. After a failure mid-request
  // only an idempotent one may (the replica may have acted on it).
  void connection_failed(bool nothing_sent) {
    release_replica();
    if (nothing_sent && replica_ >= 0) impl_.upstreams.mark_failed(static_cast<size_t>(replica_));
    connection_.reset();
    const int attempts_max = nothing_sent ? impl_.options.attempts_when_refused_max : impl_.options.attempts_when_failed_max;
    if ((nothing_sent || retry_safe_) && attempts_ < attempts_max) {
      result_.retried = true;
      if (impl_.stats) impl_.stats->retries.Increment();
      return attempt(replica_);
    }
    result_.result = Forwarded::Result::failed;
    if (impl_.stats) impl_.stats->failures.Increment();
    finish();
  }

  void finish_timed_out() {
    release_replica();
    connection_.reset();
    result_.result = Forwarded::Result::timed_out;
    if (impl_.stats) impl_.stats->timeouts.Increment();
    finish();
  }

  void release_replica() {
    if (!counted_) return;
    counted_ = false;
    impl_.upstreams.at(static_cast<size_t>(replica_)).in_flight.fetch_sub(1, std::memory_order_relaxed);
  }

  void finish() {
    if (finished_) return;
    finished_ = true;
    deadline_.cancel();
    connect_timer_.cancel();
    Proxy::Done done = std::move(done_);
    done(std::move(result_));
  }

  Proxy::Impl& impl_;
  WorkerPools& pools_;
  const bool retry_safe_;
  const bool stream_;  // hand a text/event-stream answer over at its head
  Proxy::Done done_;
  bhttp::request<bhttp::string_body> request_;
  asio::steady_timer deadline_;
  asio::steady_timer connect_timer_;
  std::unique_ptr<Connection> connection_;
  std::unique_ptr<Parser> parser_;
  Forwarded result_;
  Clock::time_point started_;
  Clock::time_point attempt_started_;
  int replica_ = -1;
  int attempts_ = 0;
  bool reused_ = false;
  bool connected_ = false;
  bool counted_ = false;
  bool timed_out_ = false;
  bool finished_ = false;
};

}  // namespace

Proxy::Proxy(http::Server& server, Upstreams& upstreams, ProxyOptions options, ProxyStats* stats)
    : impl_(std::make_unique<Impl>(Impl{upstreams, options, stats, {}})) {
  for (size_t i = 0; i < server.worker_count(); ++i) {
    auto pools = std::make_unique<WorkerPools>(server.worker_context(i));
    pools->idle.resize(upstreams.capacity());
    impl_->workers.push_back(std::move(pools));
  }
}

Proxy::~Proxy() { close(); }

void Proxy::forward(size_t worker, http::Request&& request, bool retry_safe, Done done, int64_t timeout_ms,
                    bool stream) {
  std::make_shared<Exchange>(*impl_, *impl_->workers.at(worker), std::move(request), retry_safe, stream,
                             std::move(done))
      ->start(std::max(timeout_ms, impl_->options.timeout_ms));
}

void Proxy::close() {
  for (auto& pools : impl_->workers) {
    for (auto& idle : pools->idle) idle.clear();
  }
}

}  // namespace balanced::gateway
