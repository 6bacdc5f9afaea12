// The JWKS URL loader: one GET over HTTPS (or plain HTTP to loopback), with a deadline,
// through the HTTP client (http/client.h).
#include "auth/jwk.h"
#include "auth/key_source.h"
#include "http/client.h"

namespace balanced::auth {
namespace {

class UrlLoader final : public JwksLoader {
 public:
  UrlLoader(http::ClientTarget target, int timeout_ms) : target_(std::move(target)), timeout_ms_(timeout_ms) {}

  bool changed() override { return true; }
  std::string describe() const override { return target_.url; }

  Result<std::string> load() override {
    http::ClientRequest request;
    request.headers.emplace_back("Accept", "application/json");
    auto reply = http::call(target_, request, timeout_ms_, jwks_bytes_max);
    if (!reply.ok()) return reply.error();
    if (reply.value().status != 200) {
      return Error{Code::unavailable, target_.url + ": status " + std::to_string(reply.value().status)};
    }
    return std::move(reply.value().body);
  }

 private:
  const http::ClientTarget target_;
  const int timeout_ms_;
};

}  // namespace

Result<std::unique_ptr<JwksLoader>> url_loader(const std::string& url, const std::string& ca_file,
                                               int timeout_ms) {
  auto target = http::parse_client_target(url, "--jwks", ca_file);
  if (!target.ok()) return target.error();
  return std::unique_ptr<JwksLoader>(std::make_unique<UrlLoader>(std::move(target.value()), timeout_ms));
}

}  // namespace balanced::auth
