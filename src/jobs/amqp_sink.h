// The AMQP relay's target (DESIGN.md section 11, as TigerBeetle's AMQP change data
// capture): each event published, in id order on one channel, as a persistent message to
// a durable topic exchange, routing key its type ("transaction.transfer", ...),
// `message_id` its id, `type` its type, `content_type` application/json, body the event
// as GET /events gives it. The channel is in confirm mode: an event counts as delivered
// once the broker acknowledged it (a durable queue's copy written to its disk); a nack,
// a closed connection or no confirmation within the timeout stops the round there, and
// the relay publishes again from the first unconfirmed event. A confirm says the exchange
// took the message: RabbitMQ acks, and drops, one no queue is bound for, so bind the
// queues before the relay starts. RabbitMQ is the reference broker; rabbitmq-c
// (librabbitmq) speaks the protocol, over TLS for amqps://.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "jobs/event_relay.h"

namespace balanced::jobs {

struct AmqpOptions {
  std::string url;            // --events-amqp: amqp[s]://USER@HOST[:PORT][/VHOST]
  std::string password_file;  // --events-amqp-password-file (reread at each connection)
  std::string exchange = "balanced.events";  // --events-amqp-exchange: declared durable, topic
  std::string ca_file;        // --events-amqp-ca-file: amqps://, trusted besides the system's
  int64_t timeout_ms = 10'000;  // connect, login, and the confirms of one round
};

// What an AMQP URL names: amqp://guest@localhost:5672/%2f.
struct AmqpTarget {
  bool tls = false;
  std::string host;
  uint16_t port = 5672;
  std::string user;
  std::string vhost = "/";
};
// amqp[s]://USER@HOST[:PORT][/VHOST], the vhost percent-decoded ("/" when none); a
// password in the URL is refused (it belongs in the password file).
Result<AmqpTarget> parse_amqp_url(std::string_view url);

class AmqpSink final : public EventSink {
 public:
  // Checks the URL and the password file; connects at the first delivery.
  static Result<std::unique_ptr<AmqpSink>> open(AmqpOptions options);
  ~AmqpSink() override;
  std::string name() const override { return "amqp"; }
  Delivered deliver(std::span<const core::StoredEvent> events) override;
  void cancel() override;

  struct Connection;

 private:
  AmqpSink(AmqpOptions options, AmqpTarget target);
  // Connects, logs in, opens the channel in confirm mode and declares the exchange.
  Status connect();
  void disconnect();

  const AmqpOptions options_;
  const AmqpTarget target_;
  std::mutex connection_mutex_;  // held to replace connection_, and by cancel()
  std::unique_ptr<Connection> connection_;  // null when not connected; used by the relay's thread
};

}  // namespace balanced::jobs
