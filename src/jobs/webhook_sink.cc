#include "jobs/webhook_sink.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <chrono>

#include "core/audit.h"
#include "core/json_codec.h"
#include "service/secret_file.h"

namespace balanced::jobs {
namespace {

// A receiver's answer is read for its status only (its head); this bounds nothing else.
constexpr size_t kReplyBytesMax = 64 * 1024;

}  // namespace

std::string webhook_signature(const std::vector<std::string>& secrets, int64_t unix_s, std::string_view body) {
  const std::string stamp = std::to_string(unix_s);
  std::string signed_text = stamp;
  signed_text += '.';
  signed_text += body;
  std::string header = "t=" + stamp;
  for (const auto& secret : secrets) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(signed_text.data()), signed_text.size(), mac, &length);
    header += ",v1=";
    header += core::to_hex(std::string_view(reinterpret_cast<const char*>(mac), length));
  }
  return header;
}

Result<std::unique_ptr<WebhookSink>> WebhookSink::open(WebhookOptions options) {
  auto target = http::parse_client_target(options.url, "--webhook-url", options.ca_file);
  if (!target.ok()) return target.error();
  std::unique_ptr<WebhookSink> sink(new WebhookSink(std::move(options), std::move(target.value())));
  if (auto secrets = sink->secrets(); !secrets.ok()) return secrets.error();
  return sink;
}

Result<std::vector<std::string>> WebhookSink::secrets() const {
  auto text = service::read_secret_file(options_.secret_file);
  if (!text) return Error{Code::invalid_request, "--webhook-secret-file " + options_.secret_file + ": cannot be read"};
  std::vector<std::string> secrets;
  size_t start = 0;
  while (start <= text->size()) {
    size_t end = text->find('\n', start);
    if (end == std::string::npos) end = text->size();
    std::string line = text->substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) secrets.push_back(std::move(line));
    start = end + 1;
  }
  if (secrets.empty()) return Error{Code::invalid_request, "--webhook-secret-file " + options_.secret_file + ": no secret"};
  return secrets;
}

EventSink::Delivered WebhookSink::deliver(std::span<const core::StoredEvent> events) {
  Delivered delivered;
  // Reread each round: a rotated secret is used from the next delivery on.
  auto keys = secrets();
  if (!keys.ok()) {
    delivered.status = Status(keys.error());
    return delivered;
  }
  const auto round_end = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.round_ms_max);
  for (const auto& event : events) {
    if (cancelled_) {
      delivered.status = Status(Code::unavailable, "stopping");
      return delivered;
    }
    if (delivered.confirmed > 0 && std::chrono::steady_clock::now() > round_end) return delivered;
    http::ClientRequest request;
    request.method = "POST";
    request.status_only = true;  // what a receiver says past its status is not kept
    core::append_event_json(event, request.body);
    const int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
    request.headers = {{"Content-Type", "application/json"},
                       {"Balanced-Event-Id", std::to_string(event.id)},
                       {"Balanced-Signature", webhook_signature(keys.value(), now_s, request.body)}};
    auto reply = connection_.call(request, options_.timeout_ms, kReplyBytesMax);
    if (!reply.ok()) {
      delivered.status = Status(reply.error());
      return delivered;
    }
    if (reply.value().status < 200 || reply.value().status > 299) {
      delivered.status = Status(Code::unavailable, options_.url + ": status " + std::to_string(reply.value().status) +
                                                       " for event " + std::to_string(event.id));
      return delivered;
    }
    ++delivered.confirmed;
  }
  return delivered;
}

}  // namespace balanced::jobs
