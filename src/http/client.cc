#include "http/client.h"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <functional>
#include <optional>

namespace balanced::http {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

// Writes `request` on `stream` and reads the whole answer into `parser`; `finish` gets
// the end. Nothing more starts once `abandoned` is set (the deadline passed).
template <class Stream, class Finish>
void exchange(Stream& stream, bhttp::request<bhttp::string_body>& request, beast::flat_buffer& buffer,
              bhttp::response_parser<bhttp::string_body>& parser, const bool& abandoned, Finish finish) {
  bhttp::async_write(stream, request, [&stream, &buffer, &parser, &abandoned, finish](beast::error_code w, size_t) {
    if (w || abandoned) return finish(w ? w : asio::error::operation_aborted);
    bhttp::async_read(stream, buffer, parser, [finish](beast::error_code r, size_t) { finish(r); });
  });
}

bool is_ip_literal(const std::string& host) {
  beast::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

Result<ClientTarget> parse_client_target(std::string_view url, std::string_view flag, std::string ca_file) {
  const std::string what = std::string(flag) + " " + std::string(url);
  auto parsed = net::parse_url(url);
  if (!parsed || (parsed->scheme != "https" && parsed->scheme != "http") || !parsed->user.empty()) {
    return Error{Code::invalid_request, what + ": expected https://HOST[:PORT]/PATH"};
  }
  ClientTarget target{.url = std::string(url), .tls = parsed->scheme == "https", .ca_file = std::move(ca_file)};
  const std::string& authority = parsed->authority;
  auto address = net::parse_host_port(authority);
  if (!address) address = net::parse_host_port(authority + (target.tls ? ":443" : ":80"));
  if (!address) return Error{Code::invalid_request, what + ": bad host"};
  if (!target.tls && !net::is_loopback_host(address->host)) {
    return Error{Code::invalid_request, what + ": plain http only to a loopback host"};
  }
  target.address = std::move(*address);
  target.target = parsed->path.empty() ? "/" : parsed->path;
  return target;
}

Result<ClientReply> call(const ClientTarget& to, const ClientRequest& request, int64_t timeout_ms,
                         size_t body_bytes_max) {
  KeptConnection once(to);
  return once.call(request, timeout_ms, body_bytes_max);
}

struct KeptConnection::State {
  State(ClientTarget target, int64_t idle_reuse_ms)
      : to(std::move(target)), idle_reuse(idle_reuse_ms), resolver(context) {}

  // Ends the connection; handlers still pending run before it returns, and start nothing
  // (a name lookup under way cannot be cancelled: it completes, into `abandoned`).
  void close() {
    abandoned = true;
    beast::error_code ignored;
    if (secure) beast::get_lowest_layer(*secure).socket().close(ignored);
    if (plain) plain->socket().close(ignored);
    resolver.cancel();
    context.restart();
    context.run();
    secure.reset();
    plain.reset();
    buffer.clear();
    open = false;
    abandoned = false;
  }

  const ClientTarget to;
  const std::chrono::milliseconds idle_reuse;
  asio::io_context context;
  tcp::resolver resolver;
  std::optional<ssl::context> tls_context;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  std::optional<beast::tcp_stream> plain;
  beast::flat_buffer buffer;
  bool open = false;
  bool abandoned = false;  // set while close() drains: handlers start nothing more
  std::chrono::steady_clock::time_point last_used;  // when the last answer ended
  int64_t opened = 0;
};

KeptConnection::KeptConnection(ClientTarget target, int64_t idle_reuse_ms)
    : state_(std::make_unique<State>(std::move(target), idle_reuse_ms)) {}
KeptConnection::~KeptConnection() { state_->close(); }
int64_t KeptConnection::connections_opened() const { return state_->opened; }

Result<ClientReply> KeptConnection::call(const ClientRequest& request, int64_t timeout_ms, size_t body_bytes_max) {
  State& s = *state_;
  const ClientTarget& to = s.to;
  bhttp::request<bhttp::string_body> message;
  message.version(11);
  const auto verb = bhttp::string_to_verb(request.method);
  if (verb == bhttp::verb::unknown) {
    message.method_string(request.method);
  } else {
    message.method(verb);
  }
  message.target(to.target);
  // RFC 9110 7.2: the port unless the scheme's default, an IPv6 address in brackets.
  const bool default_port = to.address.port == (to.tls ? 443 : 80);
  const bool ipv6 = to.address.host.find(':') != std::string::npos;
  message.set(bhttp::field::host, default_port ? (ipv6 ? "[" + to.address.host + "]" : to.address.host)
                                               : to.address.text());
  message.set(bhttp::field::user_agent, "balanced");
  for (const auto& [name, value] : request.headers) message.insert(name, value);
  message.body() = request.body;
  message.keep_alive(true);
  message.prepare_payload();
  if (to.tls && !s.tls_context) {
    ssl::context tls(ssl::context::tls_client);
    beast::error_code ec;
    tls.set_default_verify_paths();
    if (!to.ca_file.empty()) {
      tls.load_verify_file(to.ca_file, ec);
      if (ec) return Error{Code::invalid_request, to.ca_file + ": " + ec.message()};
    }
    tls.set_verify_mode(ssl::verify_peer);
    s.tls_context.emplace(std::move(tls));
  }
  const auto now = std::chrono::steady_clock::now();
  if (s.open && now - s.last_used > s.idle_reuse) s.close();
  const auto deadline = now + std::chrono::milliseconds(timeout_ms);
  for (int attempt = 0;; ++attempt) {
    const bool reused = s.open;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(body_bytes_max);
    beast::error_code ec;
    bool done = false;
    auto finish = [&](beast::error_code e) {
      ec = e;
      done = true;
    };
    auto send = [&] {
      if (s.secure) return exchange(*s.secure, message, s.buffer, parser, s.abandoned, finish);
      exchange(*s.plain, message, s.buffer, parser, s.abandoned, finish);
    };
    if (reused) {
      send();
    } else {
      // The connection, once the name resolved (inside the deadline).
      ++s.opened;
      if (to.tls) {
        s.secure.emplace(s.context, *s.tls_context);
        // SNI names a host, never an address (RFC 6066 3).
        if (!is_ip_literal(to.address.host)) SSL_set_tlsext_host_name(s.secure->native_handle(), to.address.host.c_str());
        s.secure->set_verify_callback(ssl::host_name_verification(to.address.host));
      } else {
        s.plain.emplace(s.context);
      }
      s.resolver.async_resolve(
          to.address.host, std::to_string(to.address.port),
          [&](beast::error_code e, const tcp::resolver::results_type& endpoints) {
            if (e || s.abandoned) return finish(e ? e : asio::error::operation_aborted);
            auto& lowest = s.secure ? beast::get_lowest_layer(*s.secure) : *s.plain;
            lowest.async_connect(endpoints, [&](beast::error_code c, auto) {
              if (c || s.abandoned) return finish(c ? c : asio::error::operation_aborted);
              if (!s.secure) return send();
              s.secure->async_handshake(ssl::stream_base::client, [&](beast::error_code h) {
                if (h || s.abandoned) return finish(h ? h : asio::error::operation_aborted);
                send();
              });
            });
          });
    }
    s.context.restart();
    s.context.run_until(deadline);
    if (!done) {
      s.close();  // the pending operations end, aborted
      return Error{Code::unavailable, to.url + ": no answer within " + std::to_string(timeout_ms) + " ms"};
    }
    // Only the status wanted, and a body past the bound: the status stands, the
    // connection ends (the rest of the body is never read).
    const bool status_stands = ec == bhttp::error::body_limit && request.status_only && parser.is_header_done();
    if (ec && !status_stands) {
      const bool nothing_came = !parser.got_some();
      s.close();
      if (reused && nothing_came && attempt == 0) continue;  // closed while idle: once more, on a new one
      return Error{Code::unavailable, to.url + ": " + ec.message()};
    }
    s.open = true;
    s.last_used = std::chrono::steady_clock::now();
    // Bytes past the answer were never asked for: a connection that sends them is not reused.
    if (status_stands || !parser.is_done() || !parser.keep_alive() || s.buffer.size() > 0) s.close();
    auto& answer = parser.get();
    ClientReply reply{.status = static_cast<int>(answer.result_int())};
    if (!request.status_only) reply.body = std::move(answer.body());
    return reply;
  }
}

Result<ClientReply> ClientPool::call(const ClientRequest& request, int64_t timeout_ms, size_t body_bytes_max) {
  std::unique_ptr<KeptConnection> connection;
  {
    std::lock_guard lock(mutex_);
    if (!idle_.empty()) {
      connection = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (!connection) connection = std::make_unique<KeptConnection>(target_);
  auto reply = connection->call(request, timeout_ms, body_bytes_max);
  std::lock_guard lock(mutex_);
  if (idle_.size() < idle_max) idle_.push_back(std::move(connection));
  return reply;
}

int64_t ClientPool::connections_opened() {
  std::lock_guard lock(mutex_);
  int64_t opened = 0;
  for (const auto& connection : idle_) opened += connection->connections_opened();
  return opened;
}

}  // namespace balanced::http
