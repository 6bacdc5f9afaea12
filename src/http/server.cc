#include "http/server.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cassert>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <charconv>
#include <chrono>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>

#include "http/problem.h"
#include "http/request_parser.h"
#include "http/wire.h"
#include "net/url.h"
#include "observe/log.h"

namespace balanced::http {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using Clock = std::chrono::steady_clock;
// A socket bound to its worker's io_context type: no type-erased executor per operation.
using Socket = asio::basic_stream_socket<tcp, asio::io_context::executor_type>;

namespace {

// How many Host header lines a request has.
size_t count_hosts(const Request& request) {
  return static_cast<size_t>(std::count_if(request.headers.begin(), request.headers.end(), [](const auto& header) {
    return iequals(header.first, "Host");
  }));
}

// What the sweeper and shutdown see of a session, whatever its stream.
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void close_if_late(Clock::time_point now) = 0;
  virtual void close_if_idle() = 0;
  // A streamed body (Respond::stream) ends once what was written is out.
  virtual void end_stream() = 0;
};

Result<std::shared_ptr<ssl::context>> load_tls(const ServerOptions& options) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                       ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
  error_code ec;
  context->use_certificate_chain_file(options.tls_cert_file, ec);
  if (ec) return Error{Code::invalid_request, "--tls-cert " + options.tls_cert_file + ": " + ec.message()};
  context->use_private_key_file(options.tls_key_file, ssl::context::pem, ec);
  if (ec) return Error{Code::invalid_request, "--tls-key " + options.tls_key_file + ": " + ec.message()};
  if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
    return Error{Code::invalid_request, "--tls-key does not match --tls-cert"};
  }
  // ALPN: HTTP/1.1 only.
  SSL_CTX_set_alpn_select_cb(
      context->native_handle(),
      [](SSL*, const unsigned char** out, unsigned char* out_length, const unsigned char* in,
         unsigned in_length, void*) -> int {
        static const unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
        unsigned char* selected = nullptr;
        if (SSL_select_next_proto(&selected, out_length, kHttp11, sizeof kHttp11, in,
                                  in_length) != OPENSSL_NPN_NEGOTIATED) {
          return SSL_TLSEXT_ERR_NOACK;
        }
        *out = selected;
        return SSL_TLSEXT_ERR_OK;
      },
      nullptr);
  return context;
}

}  // namespace

struct Worker {
  asio::io_context context{1};
  std::optional<asio::steady_timer> sweeper;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
  std::unordered_set<SessionBase*> sessions;  // touched only on this worker's thread
  std::thread thread;
  size_t index = 0;
};

struct Server::Impl {
  ServerOptions options;
  Handler& handler;
  size_t next_worker = 0;  // touched only on the first worker's thread
  uint16_t port = 0;
  std::atomic<size_t> connections{0};
  std::atomic<bool> closing{false};
  bool started = false;
  std::mutex tls_mutex;
  std::shared_ptr<ssl::context> tls;  // null for plain HTTP
  // Last, so destroyed first: sessions still queued in a context count themselves out
  // of `connections` as it goes.
  std::vector<std::unique_ptr<Worker>> workers;
  std::unique_ptr<tcp::acceptor> acceptor;  // on the first worker's thread

  Impl(ServerOptions o, Handler& h) : options(std::move(o)), handler(h) {}
  void accept();
  std::shared_ptr<ssl::context> tls_context() {
    std::lock_guard lock(tls_mutex);
    return tls;
  }
};

namespace {

template <class Stream>
Socket& lowest_socket(Stream& stream) {
  if constexpr (std::is_same_v<Stream, Socket>) {
    return stream;
  } else {
    return stream.next_layer();
  }
}

// Bytes asked of one read: at least the first, at most the second (as Beast's own reads).
constexpr size_t kReadBytesMin = 4096;
constexpr size_t kReadBytesMax = 65536;

// One connection. Reads into `buffer_`, feeds the request parser (request_parser.h),
// hands each request to the handler and writes the answer's head (encoded in wire.h) and
// body in one gathered write. Nothing is read while a request is being handled:
// pipelined requests wait in the buffer, in order. The parser takes body bytes as they
// come and bounds every line it waits to see whole, so what a session holds is bounded
// by the head limit plus one read.
template <class Stream>
class Session : public SessionBase,
                public Exchange,
                public std::enable_shared_from_this<Session<Stream>> {
 public:
  template <class... Args>
  Session(Worker& worker, Server::Impl& server, std::string peer_address, uint16_t peer_port,
          Args&&... stream_args)
      : stream_(std::forward<Args>(stream_args)...),
        worker_(worker),
        server_(server),
        peer_address_(std::move(peer_address)),
        peer_port_(peer_port) {}

  ~Session() override { server_.connections.fetch_sub(1); }

  void start() {
    worker_.sessions.insert(this);
    if constexpr (std::is_same_v<Stream, Socket>) {
      // write() tries a plain write first, which must not wait for room in the buffer.
      error_code ignored;
      stream_.non_blocking(true, ignored);
      wait_for_request();
    } else {
      set_deadline(server_.options.head_timeout_ms);
      stream_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this()](error_code ec) {
                                if (ec) return self->close();
                                self->wait_for_request();
                              });
    }
  }

  void close_if_late(Clock::time_point now) override {
    if (now > deadline_) {
      error_code ignored;
      lowest_socket(stream_).cancel(ignored);
    }
  }

  void close_if_idle() override {
    if (!busy_) {
      error_code ignored;
      lowest_socket(stream_).cancel(ignored);
    }
  }

  void end_stream() override { stream_end(); }

 private:
  void set_deadline(int64_t ms) { deadline_ = Clock::now() + std::chrono::milliseconds(ms); }

  // Waits (idle) for the first byte of the next request, unless a pipelined one is here.
  void wait_for_request() {
    // Draining: a connection that turns idle now (a handshake or a response that was
    // under way when shutdown() closed the idle ones) closes instead of waiting.
    if (server_.closing.load()) return close();
    head_ = Request{};
    head_.peer_address = peer_address_;
    head_.peer_port = peer_port_;
    parser_.start(head_);
    if (buffer_.size() > 0) {
      set_deadline(server_.options.head_timeout_ms);
      return parse();
    }
    idle_ = true;
    set_deadline(server_.options.idle_timeout_ms);
    read_more();
  }

  void read_more() {
    const size_t room = buffer_.capacity() - buffer_.size();
    const size_t bytes = std::clamp(room, kReadBytesMin, kReadBytesMax);
    stream_.async_read_some(buffer_.prepare(bytes),
                            [self = this->shared_from_this()](error_code ec, size_t read) {
                              self->on_read(ec, read);
                            });
  }

  void on_read(error_code ec, size_t bytes) {
    // End of stream, a reset, a deadline's cancel, a broken TLS record: nothing to answer.
    if (ec) return close();
    buffer_.commit(bytes);
    if (idle_) {
      idle_ = false;
      set_deadline(server_.options.head_timeout_ms);
    }
    parse();
  }

  // Feeds what is buffered to the parser until the request is whole (then handles it),
  // the parser needs more (then reads), or the request is refused.
  void parse() {
    for (;;) {
      const auto [step, used] = parser_.put({static_cast<const char*>(buffer_.data().data()), buffer_.size()});
      buffer_.consume(used);
      switch (step) {
        case RequestParser::Step::more:
          return read_more();
        case RequestParser::Step::failed:
          return on_parse_error();
        case RequestParser::Step::head:
          if (!take_head()) return;
          break;
        case RequestParser::Step::done:
          return on_request();
      }
    }
  }

  // The head is in: sets the route's body limit. False if refused.
  bool take_head() {
    size_t limit = server_.handler.body_bytes_max(head_.method, head_.target);
    if (limit == 0) limit = server_.options.body_bytes_max;
    body_limit_ = limit;
    if (!parser_.begin_body(limit)) {
      on_parse_error();
      return false;
    }
    if (!parser_.body_done()) {
      set_deadline(server_.options.body_timeout_ms);
      // A client that asked (curl 7.88 does for bodies over 1 MiB) waits for this before it
      // sends the body; without it, a second or so per request (RFC 9110 10.1.1).
      if (head_.version == 11 && buffer_.size() == 0 && parser_.expects_continue()) send_continue();
    }
    return true;
  }

  // The interim answer, written while the body is read; the final answer waits for it.
  void send_continue() {
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    interim_pending_ = true;
    asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()),
                      [self = this->shared_from_this()](error_code ec, size_t) {
                        self->interim_pending_ = false;
                        if (ec) return self->close();
                        if (self->streaming_ && !self->stream_writing_) return self->stream_flush();
                        if (self->deferred_) {
                          Response response = std::move(*self->deferred_);
                          self->deferred_.reset();
                          self->write(std::move(response));
                        }
                      });
  }

  void on_parse_error() {
    switch (parser_.error()) {
      case ParseError::body_too_large:
        return reply_and_close(problems::payload_too_large,
                               "request body exceeds " + std::to_string(body_limit_) + " bytes");
      case ParseError::head_too_large:  // the head, or a chunked body's trailer
        return reply_and_close(problems::headers_too_large,
                               std::string(parser_.why()) + " of " +
                                   std::to_string(server_.options.header_bytes_max) + " bytes");
      case ParseError::malformed:
      case ParseError::none:
        break;
    }
    return reply_and_close(problems::invalid_request, "malformed HTTP request: " + std::string(parser_.why()));
  }

  void on_request() {
    Request request = std::move(head_);
    const std::string_view target = request.target;
    const size_t question = target.find('?');
    auto path = net::percent_decode(target.substr(0, question), false);
    if (!path || !path->starts_with('/')) {
      head_ = std::move(request);
      return reply_and_close(problems::invalid_request, "malformed request target");
    }
    request.path = std::move(*path);
    // RFC 9112 3.2: exactly one Host in HTTP/1.1, never two in any version.
    if (const size_t hosts = count_hosts(request); hosts > 1 || (hosts == 0 && request.version == 11)) {
      head_ = std::move(request);
      return reply_and_close(problems::invalid_request,
                             hosts > 1 ? "more than one Host header" : "an HTTP/1.1 request needs a Host header");
    }
    if (question != std::string_view::npos) {
      request.query_valid = net::decode_form(target.substr(question + 1), request.query);
    }
    request.tls = !std::is_same_v<Stream, Socket>;
    request.worker = worker_.index;
    version_ = request.version;
    keep_alive_ = parser_.keep_alive();
    head_method_ = request.method == "HEAD";
    busy_ = true;
    ++exchange_;
    // The handler has its own bounds (the engine's queue, the gateway's upstream timeout).
    deadline_ = Clock::time_point::max();
    // While the handler holds the request, the worker's io_context counts it as work: a
    // drain (shutdown() drops the worker's own guard) keeps the thread running until the
    // answer comes, however long the handler waits with nothing of its own queued there.
    handling_.emplace(worker_.context.get_executor());
    server_.handler.handle(std::move(request), Respond(this->shared_from_this(), exchange_));
  }

  // Exchange: what the handler's Respond calls.
  void send(uint64_t exchange, Response&& response) override {
    if (worker_.context.get_executor().running_in_this_thread()) {
      return answer(exchange, std::move(response));
    }
    asio::post(worker_.context, [self = this->shared_from_this(), exchange,
                                 response = std::move(response)]() mutable {
      self->answer(exchange, std::move(response));
    });
  }

  void send_built(uint64_t exchange, Build build) override {
    if (worker_.context.get_executor().running_in_this_thread()) return answer(exchange, build());
    asio::post(worker_.context, [self = this->shared_from_this(), exchange, build = std::move(build)]() {
      self->answer(exchange, build());
    });
  }

  void decorate(uint64_t exchange, Decoration decoration) override {
    assert(worker_.context.get_executor().running_in_this_thread() && exchange == exchange_ && busy_);
    if (exchange == exchange_ && busy_) decorations_.push_back(std::move(decoration));
  }

  std::shared_ptr<BodyStream> stream(uint64_t exchange, Response&& head) override;

 public:
  // A streamed body's pieces (BodyStream, through Stream below), on this session's thread.
  void stream_write(std::string piece, std::function<void()> written) {
    if (!streaming_ || stream_ending_) return;
    if (piece.empty()) {
      asio::post(worker_.context, [self = this->shared_from_this(), written = std::move(written)] {
        if (self->streaming_) written();
      });
      return;
    }
    if (version_ == 10) {  // delimited by the close
      stream_queue_ += piece;
    } else {  // one chunk (RFC 9112 7.1)
      char size[16];
      const auto end = std::to_chars(size, size + sizeof size, piece.size(), 16).ptr;
      stream_queue_.append(size, end);
      stream_queue_ += "\r\n";
      stream_queue_ += piece;
      stream_queue_ += "\r\n";
    }
    stream_callbacks_.push_back(std::move(written));
    if (!stream_writing_) stream_flush();
  }

  void stream_post(std::function<void()> run) {
    asio::post(worker_.context, [self = this->shared_from_this(), run = std::move(run)] {
      if (self->streaming_) run();
    });
  }

  void stream_end() {
    if (!streaming_ || stream_ending_) return;
    stream_ending_ = true;
    if (version_ != 10) stream_queue_ += "0\r\n\r\n";
    if (!stream_writing_) stream_flush();
  }

  // Writes what was queued; the pieces' callbacks run once it is out. Bounded by the body
  // timeout while under way: the sweeper closes a connection whose client stopped reading.
  void stream_flush() {
    if (interim_pending_) return;  // one write at a time: after the 100 Continue
    if (stream_queue_.empty()) {
      if (stream_ending_) close();
      return;
    }
    stream_writing_ = true;
    body_out_.clear();
    std::swap(body_out_, stream_queue_);
    std::swap(stream_written_, stream_callbacks_);
    set_deadline(server_.options.body_timeout_ms);
    asio::async_write(stream_, asio::buffer(body_out_), [self = this->shared_from_this()](error_code ec, size_t) {
      self->stream_writing_ = false;
      if (ec || !self->streaming_) return self->close();
      self->deadline_ = Clock::time_point::max();
      auto written = std::move(self->stream_written_);
      self->stream_written_.clear();
      for (auto& callback : written) {
        if (self->streaming_) callback();
      }
      if (self->streaming_ && !self->stream_writing_) self->stream_flush();
    });
  }

  // While a body streams, the client sends nothing more: a read that ends tells that it
  // went away (what it sends anyway is dropped).
  void stream_watch_client() {
    buffer_.consume(buffer_.size());
    stream_.async_read_some(buffer_.prepare(kReadBytesMin), [self = this->shared_from_this()](error_code ec, size_t) {
      if (ec || !self->streaming_) return self->close();
      self->stream_watch_client();
    });
  }

  bool stream_closed() const { return !streaming_; }

  void stream_on_close(std::function<void()> closed) {
    if (!streaming_) return closed();
    stream_closed_ = std::move(closed);
  }

 private:
  // The handler's answer to request `exchange`, on this session's thread.
  void answer(uint64_t exchange, Response&& response) {
    if (exchange != exchange_ || !handling_ || streaming_) {  // answered already: the handler's bug
      observe::log(observe::LogLevel::error, "a request was answered twice; the later answer is dropped");
      return;
    }
    for (auto decoration = decorations_.rbegin(); decoration != decorations_.rend(); ++decoration) {
      (*decoration)(response);
    }
    decorations_.clear();  // keeps its capacity for the next request
    handling_.reset();
    write(std::move(response));
  }

  void reply_and_close(const Problem& problem, std::string detail) {
    keep_alive_ = false;
    version_ = 11;
    head_method_ = head_.method == "HEAD";
    busy_ = true;
    Response response = problem_response(problem, detail);
    server_.handler.on_transport_error(response, head_);
    write(std::move(response));
  }

  void write(Response&& response) {
    if (interim_pending_) {  // one write at a time: after the 100 Continue
      deferred_ = std::move(response);
      return;
    }
    keep_alive_ = keep_alive_ && !server_.closing.load();
    head_out_.clear();
    encode_response_head(response, version_, keep_alive_, server_.options.server_header, head_out_);
    // An answer to HEAD ends at its headers (RFC 9112 6.3); its Content-Length still says
    // what a GET's body would have been.
    if (head_method_) {
      body_out_.clear();
    } else {
      body_out_ = std::move(response.body);
    }
    set_deadline(server_.options.body_timeout_ms);
    std::array<asio::const_buffer, 2> buffers{asio::buffer(head_out_), asio::buffer(body_out_)};
    if constexpr (std::is_same_v<Stream, Socket>) {
      // Most answers fit in the socket's send buffer: written here, and the next request
      // taken at once, with no operation queued through the io_context (a write operation
      // and its completion were ~1,000 instructions of ~8,000 per cached GET). A full buffer
      // leaves the rest to the asynchronous write; so does a run of pipelined requests
      // answered this way, so the stack stays shallow and other connections get a turn.
      if (inline_writes_ < kInlineWritesMax) {
        error_code ec;
        const size_t written = stream_.write_some(buffers, ec);
        if (ec && ec != asio::error::would_block && ec != asio::error::try_again) return on_write(ec);
        if (!ec && written == head_out_.size() + body_out_.size()) {
          ++inline_writes_;
          on_write({});
          --inline_writes_;
          return;
        }
        if (!ec) {  // what is left: a buffer advanced past its end is empty
          buffers[0] = buffers[0] + written;
          buffers[1] = buffers[1] + (written - std::min(written, head_out_.size()));
        }
      }
    }
    asio::async_write(stream_, buffers, [self = this->shared_from_this()](error_code ec, size_t) {
      self->on_write(ec);
    });
  }

  void on_write(error_code ec) {
    busy_ = false;
    body_out_ = {};
    if (ec || !keep_alive_) return close();
    wait_for_request();
  }

  void close() {
    if (streaming_) {  // what a streamed body's writer waits for never comes
      streaming_ = false;
      stream_callbacks_.clear();
      stream_written_.clear();
      handling_.reset();
      if (auto closed = std::exchange(stream_closed_, nullptr)) closed();
    }
    worker_.sessions.erase(this);
    deadline_ = Clock::time_point::max();
    error_code ignored;
    auto& socket = lowest_socket(stream_);
    socket.shutdown(tcp::socket::shutdown_send, ignored);
    socket.close(ignored);
  }

  Stream stream_;
  Clock::time_point deadline_ = Clock::time_point::max();
  beast::flat_buffer buffer_;
  Request head_;  // what the parser reads the current request into
  std::string head_out_;  // the response head being written
  std::string body_out_;  // the response body being written
  Worker& worker_;
  Server::Impl& server_;
  const std::string peer_address_;
  const uint16_t peer_port_;
  RequestParser parser_{server_.options.header_bytes_max};  // after server_, which it reads
  size_t body_limit_ = 0;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool head_method_ = false;  // the request being answered is a HEAD
  bool busy_ = false;
  bool idle_ = false;        // waiting for a request's first byte
  // Answers written and followed by the next request without returning to the
  // io_context, nested on this stack; past the bound, the write goes asynchronous.
  static constexpr int kInlineWritesMax = 16;
  int inline_writes_ = 0;
  bool interim_pending_ = false;     // a 100 Continue is being written
  std::optional<Response> deferred_;  // the answer that waits for it
  uint64_t exchange_ = 0;  // counts the requests handed to the handler
  std::vector<Decoration> decorations_;  // the current request's, in the order added
  // Held from handing a request to the handler until its answer (a streamed one's end).
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> handling_;
  // A streamed body (Respond::stream): open from its head to the connection's close.
  bool streaming_ = false;
  bool stream_writing_ = false;
  bool stream_ending_ = false;  // end() called: close once the queue is out
  std::string stream_queue_;    // framed pieces waiting for the write under way
  std::vector<std::function<void()>> stream_callbacks_;  // their `written`
  std::vector<std::function<void()>> stream_written_;    // those of the write under way
  std::function<void()> stream_closed_;                  // BodyStream::on_close
};

// The handler's side of a session's streamed body. It does not hold the session: the
// watch on the client's side does, until the connection closes; then the session goes
// (and leaves the server's count) whoever still holds this.
template <class Stream>
class SessionStream final : public BodyStream {
 public:
  // An empty `session`: a stream that is closed from the start.
  explicit SessionStream(std::weak_ptr<Session<Stream>> session) : session_(std::move(session)) {}
  void write(std::string piece, std::function<void()> written) override {
    if (auto session = session_.lock()) session->stream_write(std::move(piece), std::move(written));
  }
  void post(std::function<void()> run) override {
    if (auto session = session_.lock()) session->stream_post(std::move(run));
  }
  void end() override {
    if (auto session = session_.lock()) session->stream_end();
  }
  bool closed() const override {
    auto session = session_.lock();
    return !session || session->stream_closed();
  }
  void on_close(std::function<void()> closed) override {
    if (auto session = session_.lock()) return session->stream_on_close(std::move(closed));
    closed();
  }

 private:
  std::weak_ptr<Session<Stream>> session_;
};

template <class Stream>
std::shared_ptr<BodyStream> Session<Stream>::stream(uint64_t exchange, Response&& head) {
  assert(worker_.context.get_executor().running_in_this_thread());
  if (exchange != exchange_ || !handling_ || streaming_) {  // answered already: the handler's bug
    observe::log(observe::LogLevel::error, "a request was answered twice; the later stream is dropped");
    return std::make_shared<SessionStream<Stream>>(std::weak_ptr<Session<Stream>>());
  }
  auto opened = std::make_shared<SessionStream<Stream>>(this->weak_from_this());
  for (auto decoration = decorations_.rbegin(); decoration != decorations_.rend(); ++decoration) {
    (*decoration)(head);
  }
  decorations_.clear();
  keep_alive_ = false;
  head_out_.clear();
  encode_response_head(head, version_, false, server_.options.server_header, head_out_, true);
  if (head_method_) {  // the head alone (RFC 9112 6.3); the stream is closed
    handling_.reset();
    head.body.clear();
    body_out_.clear();
    set_deadline(server_.options.body_timeout_ms);
    asio::async_write(stream_, asio::buffer(head_out_), [self = this->shared_from_this()](error_code ec, size_t) {
      self->on_write(ec);
    });
    return opened;
  }
  streaming_ = true;
  stream_queue_ = std::move(head_out_);
  head_out_ = {};
  // Draining already (shutdown() ended the streams it found): the head, and the end.
  if (server_.closing.load()) stream_end();
  if (!stream_writing_) stream_flush();
  stream_watch_client();
  return opened;
}

// Every second, closes the worker's connections that are past their deadline.
void sweep(Worker& worker) {
  const auto now = Clock::now();
  std::vector<SessionBase*> sessions(worker.sessions.begin(), worker.sessions.end());
  for (SessionBase* session : sessions) session->close_if_late(now);
  worker.sweeper->expires_after(std::chrono::seconds(1));
  worker.sweeper->async_wait([&worker](error_code ec) {
    if (!ec) sweep(worker);
  });
}

}  // namespace

void Server::Impl::accept() {
  // Each new connection goes to the next worker, round robin, and lives on its thread.
  Worker& worker = *workers[next_worker++ % workers.size()];
  acceptor->async_accept(worker.context, [this, &worker](error_code ec, Socket socket) {
    if (!ec) {
      if (connections.fetch_add(1) >= options.connections_max || closing.load()) {
        connections.fetch_sub(1);
        error_code ignored;
        socket.close(ignored);
      } else {
        error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        const auto remote = socket.remote_endpoint(ignored);
        std::string address = remote.address().to_string();
        if (remote.address().is_v6() && remote.address().to_v6().is_v4_mapped()) {
          address = asio::ip::make_address_v4(asio::ip::v4_mapped, remote.address().to_v6())
                        .to_string();
        }
        const uint16_t peer_port = remote.port();
        auto context = tls_context();
        asio::post(worker.context, [this, &worker, socket = std::move(socket), context,
                                   address = std::move(address), peer_port]() mutable {
          if (context) {
            std::make_shared<Session<ssl::stream<Socket>>>(
                worker, *this, std::move(address), peer_port, std::move(socket), *context)
                ->start();
          } else {
            std::make_shared<Session<Socket>>(worker, *this, std::move(address), peer_port,
                                                   std::move(socket))
                ->start();
          }
        });
      }
    }
    if (acceptor->is_open()) accept();
  });
}

Server::Server(ServerOptions options, Handler& handler)
    : impl_(std::make_unique<Impl>(std::move(options), handler)) {
  const size_t threads = std::max<size_t>(1, impl_->options.threads);
  for (size_t i = 0; i < threads; ++i) {
    impl_->workers.push_back(std::make_unique<Worker>());
    impl_->workers.back()->index = i;
  }
}

Server::~Server() { shutdown(0); }

size_t Server::worker_count() const { return impl_->workers.size(); }
boost::asio::io_context& Server::worker_context(size_t index) { return impl_->workers.at(index)->context; }
void Server::post(size_t worker, std::function<void()> run) {
  asio::post(impl_->workers.at(worker)->context, std::move(run));
}
size_t Server::open_connections() const { return impl_->connections.load(); }

Status Server::reload_tls() {
  if (impl_->options.tls_cert_file.empty() && impl_->options.tls_key_file.empty()) return {};
  auto context = load_tls(impl_->options);
  if (!context.ok()) return context.status();
  std::lock_guard lock(impl_->tls_mutex);
  impl_->tls = std::move(context.value());
  return {};
}

Status Server::start() {
  if (impl_->options.tls_cert_file.empty() != impl_->options.tls_key_file.empty()) {
    return Status(Code::invalid_request, "TLS needs both a certificate and a key");
  }
  if (auto status = reload_tls(); !status.ok()) return status;
  error_code ec;
  const auto address = asio::ip::make_address(impl_->options.host, ec);
  if (ec) return Status(Code::invalid_request, "listen address " + impl_->options.host);
  // One listening socket, no SO_REUSEPORT: a second process cannot silently share the
  // port (and half the traffic) with this one.
  impl_->acceptor = std::make_unique<tcp::acceptor>(impl_->workers.front()->context);
  auto& acceptor = *impl_->acceptor;
  const tcp::endpoint endpoint(address, impl_->options.port);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    impl_->acceptor.reset();
    return Status(Code::unavailable, "cannot listen on " +
                                         net::HostPort{impl_->options.host, impl_->options.port}.text() +
                                         ": " + ec.message());
  }
  impl_->port = acceptor.local_endpoint().port();
  for (auto& worker : impl_->workers) {
    worker->guard.emplace(worker->context.get_executor());
    worker->sweeper.emplace(worker->context);
    asio::post(worker->context, [w = worker.get()] { sweep(*w); });
  }
  asio::post(impl_->workers.front()->context, [impl = impl_.get()] { impl->accept(); });
  for (auto& worker : impl_->workers) {
    worker->thread = std::thread([w = worker.get(), name = impl_->options.thread_name] {
      observe::name_this_thread(name + "-" + std::to_string(w->index));
      w->context.run();
    });
  }
  impl_->started = true;
  return {};
}

uint16_t Server::port() const { return impl_->port; }

void Server::stop_accepting() {
  if (!impl_->started) return;
  asio::post(impl_->workers.front()->context, [impl = impl_.get()] {
    error_code ignored;
    if (impl->acceptor) impl->acceptor->close(ignored);
  });
}

void Server::shutdown(int64_t grace_ms) {
  if (!impl_->started) return;
  impl_->closing = true;
  stop_accepting();
  for (auto& worker : impl_->workers) {
    asio::post(worker->context, [w = worker.get()] {
      // Copy: closing a session removes it from the set.
      std::vector<SessionBase*> sessions(w->sessions.begin(), w->sessions.end());
      for (SessionBase* session : sessions) {
        session->close_if_idle();
        session->end_stream();  // its client reconnects, to another instance
      }
      if (w->sweeper) w->sweeper->cancel();
    });
    worker->guard.reset();
  }
  const auto deadline = Clock::now() + std::chrono::milliseconds(grace_ms);
  while (impl_->connections.load() > 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (const size_t left = impl_->connections.load(); left > 0) {
    observe::log(observe::LogLevel::warn, "connections still open at the end of the drain",
                 {{"connections", std::to_string(left)}});
  }
  for (auto& worker : impl_->workers) worker->context.stop();
  for (auto& worker : impl_->workers) {
    if (worker->thread.joinable()) worker->thread.join();
  }
  impl_->acceptor.reset();  // before the io_context it belongs to
  impl_->started = false;
}

}  // namespace balanced::http
