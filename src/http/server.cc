#include "http/server.h"

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <optional>
#include <thread>
#include <unordered_set>

#include "http/problem.h"
#include "http/target.h"
#include "observe/log.h"

namespace balanced::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;

class Session;

struct Worker {
  net::io_context context{1};
  // Closes connections whose deadline passed; one timer per worker instead of one per
  // read and write.
  std::optional<net::steady_timer> sweeper;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> guard;
  std::unordered_set<Session*> sessions;  // touched only on this worker's thread
  std::thread thread;
};

struct Server::Impl {
  ServerOptions options;
  Handler& handler;
  std::vector<std::unique_ptr<Worker>> workers;
  std::unique_ptr<tcp::acceptor> acceptor;  // on the first worker's thread
  size_t next_worker = 0;                   // touched only on the first worker's thread
  uint16_t port = 0;
  std::atomic<size_t> connections{0};
  std::atomic<bool> closing{false};

  Impl(ServerOptions o, Handler& h) : options(std::move(o)), handler(h) {}
  void accept();
};

namespace {

}  // namespace

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Worker& worker, Server::Impl& server)
      : stream_(std::move(socket)), worker_(worker), server_(server) {}

  // Closes the connection when it has been waiting for (or sending) a request, or
  // writing a response, past its deadline. On the worker's thread.
  void close_if_late(std::chrono::steady_clock::time_point now) {
    if (now > deadline_) {
      beast::error_code ignored;
      stream_.cancel(ignored);
    }
  }

  ~Session() { server_.connections.fetch_sub(1); }

  void start() {
    worker_.sessions.insert(this);
    read();
  }

  // Closes the connection if no request is being answered. On the worker's thread.
  void close_if_idle() {
    if (!busy_) {
      beast::error_code ignored;
      stream_.cancel(ignored);
    }
  }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(server_.options.body_bytes_max);
    parser_->header_limit(static_cast<uint32_t>(server_.options.header_bytes_max));
    deadline_ = std::chrono::steady_clock::now() +
                std::chrono::milliseconds(server_.options.read_timeout_ms);
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        self->on_read(ec);
                      });
  }

  void on_read(beast::error_code ec) {
    if (ec) {
      if (ec == bhttp::error::body_limit) {
        return reply_and_close(Code::payload_too_large,
                               "request body exceeds " +
                                   std::to_string(server_.options.body_bytes_max) + " bytes");
      }
      if (ec == bhttp::error::header_limit) {
        return reply_and_close(Code::headers_too_large,
                               "request headers exceed " +
                                   std::to_string(server_.options.header_bytes_max) + " bytes");
      }
      const bool quiet = ec == bhttp::error::end_of_stream || ec == net::error::eof ||
                         ec == beast::error::timeout || ec == net::error::operation_aborted ||
                         ec == net::error::connection_reset || ec == bhttp::error::partial_message;
      if (quiet || buffer_.size() == 0) return close();
      return reply_and_close(Code::invalid_request, "malformed HTTP request: " + ec.message());
    }
    auto& message = parser_->get();
    Request request;
    request.method = std::string(message.method_string());
    const std::string_view target = message.target();
    const size_t question = target.find('?');
    auto path = percent_decode(target.substr(0, question), false);
    if (!path || !path->starts_with('/')) {
      return reply_and_close(Code::invalid_request, "malformed request target");
    }
    request.path = std::move(*path);
    if (question != std::string_view::npos) {
      request.query_valid = decode_form(target.substr(question + 1), request.query);
    }
    request.body = std::move(message.body());
    request.content_type = std::string(message[bhttp::field::content_type]);
    request.idempotency_key = std::string(message["Idempotency-Key"]);
    request.operator_name = std::string(message["X-Operator"]);
    request.request_id = std::string(message["X-Request-Id"]);
    version_ = message.version();
    keep_alive_ = message.keep_alive();
    busy_ = true;
    deadline_ = std::chrono::steady_clock::time_point::max();  // the engine has its bounds
    server_.handler.handle(
        std::move(request), Respond([self = shared_from_this()](Respond::Build build) {
          net::dispatch(self->stream_.get_executor(),
                        [self, build = std::move(build)]() { self->write(build()); });
        }));
  }

  void reply_and_close(Code code, std::string detail) {
    keep_alive_ = false;
    version_ = 11;
    busy_ = true;
    write(problem_response(code, detail));
  }

  void write(Response&& response) {
    response_ = {};
    response_.version(version_);
    response_.result(static_cast<unsigned>(response.status));
    response_.set(bhttp::field::server, "balanced");
    response_.set(bhttp::field::content_type, response.content_type);
    for (auto& [name, value] : response.headers) response_.set(name, value);
    response_.body() = std::move(response.body);
    response_.keep_alive(keep_alive_ && !server_.closing.load());
    response_.prepare_payload();
    deadline_ = std::chrono::steady_clock::now() +
                std::chrono::milliseconds(server_.options.read_timeout_ms);
    bhttp::async_write(stream_, response_,
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         self->on_write(ec);
                       });
  }

  void on_write(beast::error_code ec) {
    busy_ = false;
    if (ec || !response_.keep_alive()) return close();
    read();
  }

  void close() {
    worker_.sessions.erase(this);
    beast::error_code ignored;
    stream_.shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close(ignored);
  }

  tcp::socket stream_;
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bhttp::response<bhttp::string_body> response_;
  Worker& worker_;
  Server::Impl& server_;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool busy_ = false;
};

// Every second, closes the worker's connections that are past their deadline.
void sweep(Worker& worker) {
  const auto now = std::chrono::steady_clock::now();
  std::vector<Session*> sessions(worker.sessions.begin(), worker.sessions.end());
  for (Session* session : sessions) session->close_if_late(now);
  worker.sweeper->expires_after(std::chrono::seconds(1));
  worker.sweeper->async_wait([&worker](beast::error_code ec) {
    if (!ec) sweep(worker);
  });
}

void Server::Impl::accept() {
  // Each new connection goes to the next worker, round robin, and lives on its thread.
  Worker& worker = *workers[next_worker++ % workers.size()];
  acceptor->async_accept(worker.context, [this, &worker](beast::error_code ec,
                                                         tcp::socket socket) {
    if (!ec) {
      if (connections.fetch_add(1) >= options.connections_max || closing.load()) {
        connections.fetch_sub(1);
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        net::post(worker.context, [this, &worker, socket = std::move(socket)]() mutable {
          std::make_shared<Session>(std::move(socket), worker, *this)->start();
        });
      }
    }
    if (acceptor->is_open()) accept();
  });
}

Server::Server(ServerOptions options, Handler& handler)
    : impl_(std::make_unique<Impl>(std::move(options), handler)) {}

Server::~Server() { shutdown(0); }

Status Server::start() {
  beast::error_code ec;
  const auto address = net::ip::make_address(impl_->options.host, ec);
  if (ec) return Status(Code::invalid_request, "listen address " + impl_->options.host);
  const size_t threads = std::max<size_t>(1, impl_->options.threads);
  for (size_t i = 0; i < threads; ++i) impl_->workers.push_back(std::make_unique<Worker>());
  // One listening socket, no SO_REUSEPORT: a second process cannot silently share the
  // port (and half the traffic) with this one.
  impl_->acceptor = std::make_unique<tcp::acceptor>(impl_->workers.front()->context);
  auto& acceptor = *impl_->acceptor;
  const tcp::endpoint endpoint(address, impl_->options.port);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    impl_->workers.clear();
    return Status(Code::unavailable, "cannot listen on " + impl_->options.host + ":" +
                                         std::to_string(impl_->options.port) + ": " +
                                         ec.message());
  }
  impl_->port = acceptor.local_endpoint().port();
  for (auto& worker : impl_->workers) {
    worker->guard.emplace(worker->context.get_executor());
    worker->sweeper.emplace(worker->context);
    net::post(worker->context, [w = worker.get()] { sweep(*w); });
  }
  net::post(impl_->workers.front()->context, [impl = impl_.get()] { impl->accept(); });
  for (auto& worker : impl_->workers) {
    worker->thread = std::thread([w = worker.get()] { w->context.run(); });
  }
  return {};
}

uint16_t Server::port() const { return impl_->port; }

void Server::stop_accepting() {
  if (impl_->workers.empty()) return;
  net::post(impl_->workers.front()->context, [impl = impl_.get()] {
    beast::error_code ignored;
    impl->acceptor->close(ignored);
  });
}

void Server::shutdown(int64_t grace_ms) {
  if (impl_->workers.empty()) return;
  impl_->closing = true;
  stop_accepting();
  for (auto& worker : impl_->workers) {
    net::post(worker->context, [w = worker.get()] {
      // Copy: closing a session removes it from the set.
      std::vector<Session*> sessions(w->sessions.begin(), w->sessions.end());
      for (Session* session : sessions) session->close_if_idle();
      if (w->sweeper) w->sweeper->cancel();
    });
    worker->guard.reset();
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
  while (impl_->connections.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (auto& worker : impl_->workers) worker->context.stop();
  for (auto& worker : impl_->workers) {
    if (worker->thread.joinable()) worker->thread.join();
  }
  impl_->acceptor.reset();  // before the io_context it belongs to
  impl_->workers.clear();
}

}  // namespace balanced::http
