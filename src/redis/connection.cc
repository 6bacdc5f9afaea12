#include "redis/connection.h"

#include <hiredis/hiredis.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <charconv>
#include <chrono>
#include <optional>

#include "net/url.h"
#include "service/secret_file.h"

namespace balanced::redis {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

namespace {

Reply copy_reply(const redisReply* r) {
  Reply reply;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      reply.type = Reply::Type::string;
      reply.text.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      reply.type = Reply::Type::status;
      reply.text.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      reply.type = Reply::Type::error;
      reply.text.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      reply.type = Reply::Type::integer;
      reply.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      reply.type = Reply::Type::array;
      reply.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) reply.elements.push_back(copy_reply(r->element[i]));
      break;
    default:
      reply.type = Reply::Type::nil;
  }
  return reply;
}

void append_length(std::string& out, char kind, size_t length) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof(digits), length).ptr;
  out += kind;
  out.append(digits, end);
  out += "\r\n";
}

// What an asynchronous operation ended with; `ec` stays empty while it runs.
struct Outcome {
  std::optional<error_code> ec;
  size_t bytes = 0;
};

// A completion handler for every operation used here (connect, handshake, read, write).
struct OnDone {
  Outcome* outcome;
  void operator()(error_code ec) const { outcome->ec = ec; }
  void operator()(error_code ec, size_t bytes) const {
    outcome->ec = ec;
    outcome->bytes = bytes;
  }
  void operator()(error_code ec, const tcp::endpoint&) const { outcome->ec = ec; }
};

}  // namespace

std::string Endpoint::address() const { return net::HostPort{host, port}.text(); }

std::string_view failure_name(Failure failure) {
  switch (failure) {
    case Failure::none: return "none";
    case Failure::network: return "network";
    case Failure::auth: return "auth";
    case Failure::tls: return "tls";
  }
  return "unknown";
}

void append_resp(std::string& out, const Command& command) {
  append_length(out, '*', command.size());
  for (const auto& argument : command) {
    append_length(out, '$', argument.size());
    out += argument;
    out += "\r\n";
  }
}

struct TlsContext::Impl {
  ssl::context context{ssl::context::tls_client};
};

TlsContext::TlsContext() : impl_(std::make_unique<Impl>()) {}
TlsContext::~TlsContext() = default;

Result<std::shared_ptr<TlsContext>> TlsContext::make(const Security& security) {
  std::shared_ptr<TlsContext> tls(new TlsContext());
  ssl::context& context = tls->impl_->context;
  SSL_CTX_set_min_proto_version(context.native_handle(), TLS1_2_VERSION);
  error_code ec;
  context.set_verify_mode(ssl::verify_peer, ec);
  if (security.ca_file.empty()) {
    context.set_default_verify_paths(ec);
    if (ec) return Error{Code::invalid_request, "cannot load the system's trust store: " + ec.message()};
  } else {
    context.load_verify_file(security.ca_file, ec);
    if (ec) {
      return Error{Code::invalid_request,
                   "cannot load the CA file " + security.ca_file + ": " + ec.message()};
    }
  }
  return tls;
}

struct Connection::Impl {
  // Declared first, destroyed last: the sockets below belong to it.
  asio::io_context io{1};
  std::optional<tcp::socket> plain;
  std::optional<ssl::stream<tcp::socket>> secure;
  redisReader* reader = redisReaderCreate();
  std::array<char, 16 * 1024> chunk;
  bool usable = true;

  ~Impl() {
    if (reader != nullptr) redisReaderFree(reader);
  }

  tcp::socket& socket() { return secure ? secure->next_layer() : *plain; }

  // Runs the operation just started until it ends or `deadline` passes. Past the deadline
  // the socket is closed (the operation then ends aborted) and the connection is unusable,
  // as it is after any error.
  error_code finish(const Outcome& outcome, Clock::time_point deadline) {
    io.restart();
    io.run_until(deadline);
    if (!outcome.ec) {
      error_code ignored;
      socket().close(ignored);
      io.restart();
      io.run();
      usable = false;
      return asio::error::timed_out;
    }
    if (*outcome.ec) usable = false;
    return *outcome.ec;
  }

  Result<std::vector<Reply>> exchange(std::string_view request, size_t count, Clock::time_point deadline) {
    if (!usable) return Error{Code::unavailable, "connection already broken"};
    Outcome written;
    if (secure) {
      asio::async_write(*secure, asio::buffer(request.data(), request.size()), OnDone{&written});
    } else {
      asio::async_write(*plain, asio::buffer(request.data(), request.size()), OnDone{&written});
    }
    if (const error_code ec = finish(written, deadline)) {
      return Error{Code::unavailable, "write: " + ec.message()};
    }
    std::vector<Reply> replies;
    replies.reserve(count);
    size_t read_bytes = 0;
    while (replies.size() < count) {
      void* raw = nullptr;
      if (redisReaderGetReply(reader, &raw) != REDIS_OK) {
        usable = false;
        return Error{Code::unavailable, std::string("malformed reply: ") + reader->errstr};
      }
      if (raw != nullptr) {
        replies.push_back(copy_reply(static_cast<redisReply*>(raw)));
        freeReplyObject(raw);
        continue;
      }
      if (read_bytes > reply_bytes_max) {
        usable = false;
        return Error{Code::unavailable, "replies over " + std::to_string(reply_bytes_max) + " bytes"};
      }
      Outcome got;
      if (secure) {
        secure->async_read_some(asio::buffer(chunk), OnDone{&got});
      } else {
        plain->async_read_some(asio::buffer(chunk), OnDone{&got});
      }
      if (const error_code ec = finish(got, deadline)) {
        return Error{Code::unavailable, "read: " + ec.message()};
      }
      read_bytes += got.bytes;
      if (redisReaderFeed(reader, chunk.data(), got.bytes) != REDIS_OK) {
        usable = false;
        return Error{Code::unavailable, std::string("malformed reply: ") + reader->errstr};
      }
    }
    return replies;
  }
};

Connection::Connection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Connection::~Connection() = default;

bool Connection::usable() const { return impl_->usable; }

Result<std::vector<Reply>> Connection::exchange(std::string_view request, size_t replies, int timeout_ms) {
  return impl_->exchange(request, replies, Clock::now() + std::chrono::milliseconds(timeout_ms));
}

std::unique_ptr<Connection> Connection::open(const Endpoint& endpoint, const Security& security,
                                             TlsContext* tls, int timeout_ms, Failure& failure,
                                             std::string& why) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  auto impl = std::make_unique<Impl>();
  failure = Failure::network;
  if (impl->reader == nullptr) {
    why = "out of memory for a reply reader";
    return nullptr;
  }
  if (security.tls) {
    if (tls == nullptr) {
      failure = Failure::tls;
      why = "no TLS context";
      return nullptr;
    }
    impl->secure.emplace(impl->io, tls->impl().context);
  } else {
    impl->plain.emplace(impl->io);
  }

  // An address is dialed as it is; a name is resolved again on every connect (a managed
  // endpoint's address moves on failover). The system resolver bounds its own wait
  // (resolv.conf's timeout and attempts).
  error_code ec;
  const asio::ip::address literal = asio::ip::make_address(endpoint.host, ec);
  const bool is_address = !ec;
  std::vector<tcp::endpoint> targets;
  if (is_address) {
    targets.emplace_back(literal, endpoint.port);
  } else {
    tcp::resolver resolver(impl->io);
    const auto results =
        resolver.resolve(endpoint.host, std::to_string(endpoint.port), tcp::resolver::numeric_service, ec);
    if (ec) {
      why = "cannot resolve " + endpoint.host + ": " + ec.message();
      return nullptr;
    }
    for (const auto& result : results) targets.push_back(result.endpoint());
  }
  Outcome connected;
  asio::async_connect(impl->socket(), targets, OnDone{&connected});
  if (const error_code error = impl->finish(connected, deadline)) {
    why = "cannot connect: " + error.message();
    return nullptr;
  }
  impl->socket().set_option(tcp::no_delay(true), ec);

  if (impl->secure) {
    // The certificate must name the host dialed: its DNS name (also sent as SNI), or its
    // address among the certificate's IP SANs.
    SSL* handle = impl->secure->native_handle();
    X509_VERIFY_PARAM* param = SSL_get0_param(handle);
    if (is_address) {
      X509_VERIFY_PARAM_set1_ip_asc(param, endpoint.host.c_str());
    } else {
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      X509_VERIFY_PARAM_set1_host(param, endpoint.host.c_str(), endpoint.host.size());
      SSL_set_tlsext_host_name(handle, endpoint.host.c_str());
    }
    Outcome shaken;
    impl->secure->async_handshake(ssl::stream_base::client, OnDone{&shaken});
    if (const error_code error = impl->finish(shaken, deadline)) {
      const long verified = SSL_get_verify_result(handle);
      if (verified != X509_V_OK) {
        failure = Failure::tls;
        why = std::string("certificate refused: ") + X509_verify_cert_error_string(verified);
      } else if (error.category() == asio::error::get_ssl_category() ||
                 error == ssl::error::stream_truncated) {
        failure = Failure::tls;
        why = "TLS handshake failed: " + error.message();
      } else {
        why = "TLS handshake: " + error.message();
      }
      return nullptr;
    }
  }

  std::unique_ptr<Connection> connection(new Connection(std::move(impl)));
  if (security.authenticates()) {
    std::string password = security.password;
    if (!security.password_file.empty()) {
      auto from_file = service::read_secret_file(security.password_file);
      if (!from_file) {
        failure = Failure::auth;
        why = "cannot read the password file " + security.password_file;
        return nullptr;
      }
      password = std::move(*from_file);
    }
    std::string request;
    append_resp(request, security.user.empty() ? Command{"AUTH", password}
                                               : Command{"AUTH", security.user, password});
    auto replies = connection->impl_->exchange(request, 1, deadline);
    if (!replies.ok()) {
      why = "AUTH: " + replies.error().detail;
      return nullptr;
    }
    const Reply& reply = replies.value().front();
    if (reply.is_error()) {
      failure = Failure::auth;
      why = "AUTH refused: " + reply.text;
      return nullptr;
    }
  }
  failure = Failure::none;
  return connection;
}

}  // namespace balanced::redis
