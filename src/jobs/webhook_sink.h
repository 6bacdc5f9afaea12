// The webhook relay's target (DESIGN.md section 11, as Stripe's webhooks): one POST per
// event, its body the event as GET /events gives it, signed in the header
// `Balanced-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">` with one `v1=`
// per line of the secret file (two during a rotation), and `Balanced-Event-Id` for the
// receiver's own deduplication. A 2xx confirms the event; anything else, or no answer
// within the timeout, stops the round there (the relay retries it with backoff).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "http/client.h"
#include "jobs/event_relay.h"

namespace balanced::jobs {

struct WebhookOptions {
  std::string url;          // --webhook-url
  std::string secret_file;  // --webhook-secret-file: one secret per line, reread each round
  std::string ca_file;      // --webhook-ca-file: trusted besides the system's roots
  int64_t timeout_ms = 10'000;  // one POST's, connection included
  // A round ends after this long (with what was confirmed), so the relay checks its lease
  // and a stop between rounds; a POST under way finishes first.
  int64_t round_ms_max = 1'000;
};

// "t=<unix_s>,v1=<hex>[,v1=<hex>...]": one v1 per secret, of "<unix_s>.<body>".
std::string webhook_signature(const std::vector<std::string>& secrets, int64_t unix_s, std::string_view body);

class WebhookSink final : public EventSink {
 public:
  // Checks the URL and that the secret file holds at least one secret.
  static Result<std::unique_ptr<WebhookSink>> open(WebhookOptions options);
  std::string name() const override { return "webhook"; }
  Delivered deliver(std::span<const core::StoredEvent> events) override;
  void cancel() override { cancelled_ = true; }

 private:
  WebhookSink(WebhookOptions options, http::ClientTarget target)
      : options_(std::move(options)), connection_(std::move(target)) {}
  Result<std::vector<std::string>> secrets() const;

  const WebhookOptions options_;
  // One relay thread delivers: one connection, kept alive while the receiver keeps it.
  http::KeptConnection connection_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace balanced::jobs
