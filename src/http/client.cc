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

// Writes `request` on `stream` and reads the answer (or its head) into `parser`; `finish`
// gets the end.
template <class Stream, class Finish>
void exchange(Stream& stream, bhttp::request<bhttp::string_body>& request, bool head_only, beast::flat_buffer& buffer,
              bhttp::response_parser<bhttp::string_body>& parser, Finish finish) {
  bhttp::async_write(stream, request, [&stream, &buffer, &parser, head_only, finish](beast::error_code w, size_t) {
    if (w) return finish(w);
    if (head_only) {
      return bhttp::async_read_header(stream, buffer, parser, [finish](beast::error_code r, size_t) { finish(r); });
    }
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
  asio::io_context context;
  beast::error_code ec;
  tcp::resolver resolver(context);
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
  message.keep_alive(false);
  message.prepare_payload();
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(body_bytes_max);
  bool done = false;
  auto finish = [&](beast::error_code e) {
    ec = e;
    done = true;
  };
  std::optional<ssl::context> tls_context;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  std::optional<beast::tcp_stream> plain;
  const bool head_only = request.status_only;
  // The connection and the exchange, once the name resolved (inside the deadline).
  std::function<void(const tcp::resolver::results_type&)> connected;
  if (to.tls) {
    tls_context.emplace(ssl::context::tls_client);
    tls_context->set_default_verify_paths();
    if (!to.ca_file.empty()) {
      tls_context->load_verify_file(to.ca_file, ec);
      if (ec) return Error{Code::invalid_request, to.ca_file + ": " + ec.message()};
    }
    tls_context->set_verify_mode(ssl::verify_peer);
    secure.emplace(context, *tls_context);
    // SNI names a host, never an address (RFC 6066 3).
    if (!is_ip_literal(to.address.host)) SSL_set_tlsext_host_name(secure->native_handle(), to.address.host.c_str());
    secure->set_verify_callback(ssl::host_name_verification(to.address.host));
    connected = [&](const tcp::resolver::results_type& endpoints) {
      beast::get_lowest_layer(*secure).async_connect(endpoints, [&](beast::error_code e, auto) {
        if (e) return finish(e);
        secure->async_handshake(ssl::stream_base::client, [&](beast::error_code h) {
          if (h) return finish(h);
          exchange(*secure, message, head_only, buffer, parser, finish);
        });
      });
    };
  } else {
    plain.emplace(context);
    connected = [&](const tcp::resolver::results_type& endpoints) {
      plain->async_connect(endpoints, [&](beast::error_code e, auto) {
        if (e) return finish(e);
        exchange(*plain, message, head_only, buffer, parser, finish);
      });
    };
  }
  resolver.async_resolve(to.address.host, std::to_string(to.address.port),
                         [&](beast::error_code e, const tcp::resolver::results_type& endpoints) {
                           if (e) return finish(e);
                           connected(endpoints);
                         });
  context.run_for(std::chrono::milliseconds(timeout_ms));
  if (!done) return Error{Code::unavailable, to.url + ": no answer within " + std::to_string(timeout_ms) + " ms"};
  if (ec) return Error{Code::unavailable, to.url + ": " + ec.message()};
  return ClientReply{.status = static_cast<int>(parser.get().result_int()), .body = std::move(parser.get().body())};
}

}  // namespace balanced::http
