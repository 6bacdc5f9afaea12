// The JWKS URL loader: one GET over HTTPS (or plain HTTP to loopback), with a deadline.
// Beast and Asio templates for the auth module live only here.
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>

#include "auth/key_source.h"
#include "net/url.h"

namespace balanced::auth {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

class UrlLoader final : public JwksLoader {
 public:
  UrlLoader(std::string url, bool tls, net::HostPort address, std::string target,
            std::string ca_file, int timeout_ms)
      : url_(std::move(url)),
        tls_(tls),
        address_(std::move(address)),
        target_(std::move(target)),
        ca_file_(std::move(ca_file)),
        timeout_ms_(timeout_ms) {}

  bool changed() override { return true; }
  std::string describe() const override { return url_; }

  Result<std::string> load() override {
    asio::io_context context;
    beast::error_code ec;
    std::string body;
    tcp::resolver resolver(context);
    auto endpoints = resolver.resolve(address_.host, std::to_string(address_.port), ec);
    if (ec) return Error{Code::unavailable, url_ + ": " + ec.message()};
    bhttp::request<bhttp::empty_body> request{bhttp::verb::get, target_, 11};
    request.set(bhttp::field::host, address_.host);
    request.set(bhttp::field::accept, "application/json");
    request.set(bhttp::field::user_agent, "balanced-jwks");
    beast::flat_buffer buffer;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(jwks_bytes_max);
    bool done = false;
    auto finish = [&](beast::error_code e) {
      ec = e;
      done = true;
    };
    std::optional<ssl::context> tls_context;
    std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
    std::optional<beast::tcp_stream> plain;
    if (tls_) {
      tls_context.emplace(ssl::context::tls_client);
      tls_context->set_default_verify_paths();
      if (!ca_file_.empty()) {
        tls_context->load_verify_file(ca_file_, ec);
        if (ec) return Error{Code::invalid_request, "--jwks-ca-file: " + ec.message()};
      }
      tls_context->set_verify_mode(ssl::verify_peer);
      secure.emplace(context, *tls_context);
      SSL_set_tlsext_host_name(secure->native_handle(), address_.host.c_str());
      secure->set_verify_callback(ssl::host_name_verification(address_.host));
      beast::get_lowest_layer(*secure).async_connect(endpoints, [&](beast::error_code e, auto) {
        if (e) return finish(e);
        secure->async_handshake(ssl::stream_base::client, [&](beast::error_code h) {
          if (h) return finish(h);
          bhttp::async_write(*secure, request, [&](beast::error_code w, size_t) {
            if (w) return finish(w);
            bhttp::async_read(*secure, buffer, parser, [&](beast::error_code r, size_t) { finish(r); });
          });
        });
      });
    } else {
      plain.emplace(context);
      plain->async_connect(endpoints, [&](beast::error_code e, auto) {
        if (e) return finish(e);
        bhttp::async_write(*plain, request, [&](beast::error_code w, size_t) {
          if (w) return finish(w);
          bhttp::async_read(*plain, buffer, parser, [&](beast::error_code r, size_t) { finish(r); });
        });
      });
    }
    context.run_for(std::chrono::milliseconds(timeout_ms_));
    if (!done) return Error{Code::unavailable, url_ + ": no answer within " + std::to_string(timeout_ms_) + " ms"};
    if (ec) return Error{Code::unavailable, url_ + ": " + ec.message()};
    const auto& response = parser.get();
    if (response.result_int() != 200) {
      return Error{Code::unavailable, url_ + ": status " + std::to_string(response.result_int())};
    }
    return response.body();
  }

 private:
  const std::string url_;
  const bool tls_;
  const net::HostPort address_;
  const std::string target_;
  const std::string ca_file_;
  const int timeout_ms_;
};

}  // namespace

Result<std::unique_ptr<JwksLoader>> url_loader(const std::string& url, const std::string& ca_file,
                                               int timeout_ms) {
  auto parsed = net::parse_url(url);
  if (!parsed || (parsed->scheme != "https" && parsed->scheme != "http") || !parsed->user.empty()) {
    return Error{Code::invalid_request, "--jwks " + url + ": expected https://HOST[:PORT]/PATH"};
  }
  const bool tls = parsed->scheme == "https";
  std::string authority = parsed->authority;
  auto address = net::parse_host_port(authority);
  if (!address) address = net::parse_host_port(authority + (tls ? ":443" : ":80"));
  if (!address) return Error{Code::invalid_request, "--jwks " + url + ": bad host"};
  if (!tls && !net::is_loopback_host(address->host)) {
    return Error{Code::invalid_request, "--jwks " + url + ": plain http only to a loopback host"};
  }
  std::string target = parsed->path.empty() ? "/" : parsed->path;
  return std::unique_ptr<JwksLoader>(std::make_unique<UrlLoader>(
      url, tls, std::move(*address), std::move(target), ca_file, timeout_ms));
}

}  // namespace balanced::auth
