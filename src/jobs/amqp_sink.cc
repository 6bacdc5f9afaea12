#include "jobs/amqp_sink.h"

#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <chrono>
#include <vector>

#include "core/json_codec.h"
#include "net/url.h"
#include "service/secret_file.h"

namespace balanced::jobs {
namespace {

constexpr amqp_channel_t kChannel = 1;
constexpr int kFrameBytesMax = 131072;

amqp_bytes_t bytes_of(std::string_view text) {
  return amqp_bytes_t{.len = text.size(), .bytes = const_cast<char*>(text.data())};
}

timeval timeval_of(int64_t ms) {
  return timeval{.tv_sec = static_cast<time_t>(ms / 1000), .tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000)};
}

// What an RPC's reply says when it failed.
std::string reply_error(const amqp_rpc_reply_t& reply, std::string_view what) {
  std::string text(what);
  switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      return {};
    case AMQP_RESPONSE_NONE:
      return text + ": no reply";
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      return text + ": " + amqp_error_string2(reply.library_error);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        const auto* close = static_cast<amqp_connection_close_t*>(reply.reply.decoded);
        return text + ": connection closed by the broker: " +
               std::string(static_cast<const char*>(close->reply_text.bytes), close->reply_text.len);
      }
      if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        const auto* close = static_cast<amqp_channel_close_t*>(reply.reply.decoded);
        return text + ": channel closed by the broker: " +
               std::string(static_cast<const char*>(close->reply_text.bytes), close->reply_text.len);
      }
      return text + ": broker error";
  }
  return text + ": unknown reply";
}

}  // namespace

struct AmqpSink::Connection {
  amqp_connection_state_t state = amqp_new_connection();
  ~Connection() {
    // Closing politely may wait on a dead broker; the socket goes with the state.
    amqp_destroy_connection(state);
  }
  uint64_t next_tag = 1;  // the delivery tag of the next publish on the confirm channel
};

Result<AmqpTarget> parse_amqp_url(std::string_view url) {
  const std::string what = "--events-amqp " + std::string(url);
  auto parsed = net::parse_url(url);
  if (!parsed || (parsed->scheme != "amqp" && parsed->scheme != "amqps")) {
    return Error{Code::invalid_request, what + ": expected amqp[s]://USER@HOST[:PORT][/VHOST]"};
  }
  if (parsed->has_password) {
    return Error{Code::invalid_request, what + ": the password goes in --events-amqp-password-file"};
  }
  AmqpTarget target;
  target.tls = parsed->scheme == "amqps";
  target.user = parsed->user.empty() ? "guest" : parsed->user;
  auto address = net::parse_host_port(parsed->authority);
  if (!address) address = net::parse_host_port(parsed->authority + (target.tls ? ":5671" : ":5672"));
  if (!address || address->port == 0) return Error{Code::invalid_request, what + ": bad host"};
  target.host = address->host;
  target.port = address->port;
  if (parsed->path.size() > 1) {
    auto vhost = net::percent_decode(std::string_view(parsed->path).substr(1), false);
    if (!vhost) return Error{Code::invalid_request, what + ": bad vhost"};
    target.vhost = *vhost;
  }
  return target;
}

Result<std::unique_ptr<AmqpSink>> AmqpSink::open(AmqpOptions options) {
  auto target = parse_amqp_url(options.url);
  if (!target.ok()) return target.error();
  if (options.exchange.empty() || options.exchange.size() > 127) {
    return Error{Code::invalid_request, "--events-amqp-exchange: 1 to 127 characters"};
  }
  if (!options.password_file.empty() && !service::read_secret_file(options.password_file)) {
    return Error{Code::invalid_request, "--events-amqp-password-file " + options.password_file + ": cannot be read"};
  }
  return std::unique_ptr<AmqpSink>(new AmqpSink(std::move(options), std::move(target.value())));
}

AmqpSink::AmqpSink(AmqpOptions options, AmqpTarget target) : options_(std::move(options)), target_(std::move(target)) {}

AmqpSink::~AmqpSink() = default;

void AmqpSink::disconnect() {
  std::lock_guard lock(connection_mutex_);
  connection_.reset();
}

void AmqpSink::cancel() {
  // The fd stays the connection's while the lock is held (disconnect() takes it too);
  // a shutdown wakes a publish or a wait for confirms under way, which then fails.
  std::lock_guard lock(connection_mutex_);
  if (connection_) ::shutdown(amqp_get_sockfd(connection_->state), SHUT_RDWR);
}

Status AmqpSink::connect() {
  auto connection = std::make_unique<Connection>();
  amqp_connection_state_t state = connection->state;
  const std::string where = (target_.tls ? "amqps://" : "amqp://") + net::HostPort{target_.host, target_.port}.text();
  amqp_socket_t* socket = target_.tls ? amqp_ssl_socket_new(state) : amqp_tcp_socket_new(state);
  if (socket == nullptr) return Status(Code::internal, where + ": cannot make a socket");
  if (target_.tls) {
    if (!options_.ca_file.empty() && amqp_ssl_socket_set_cacert(socket, options_.ca_file.c_str()) != AMQP_STATUS_OK) {
      return Status(Code::invalid_request, "--events-amqp-ca-file " + options_.ca_file + ": cannot be read");
    }
    // rabbitmq-c's own context trusts nothing by default: the system's roots too.
    SSL_CTX_set_default_verify_paths(static_cast<SSL_CTX*>(amqp_ssl_socket_get_context(socket)));
    amqp_ssl_socket_set_verify_peer(socket, 1);
    amqp_ssl_socket_set_verify_hostname(socket, 1);
  }
  timeval timeout = timeval_of(options_.timeout_ms);
  if (const int status = amqp_socket_open_noblock(socket, target_.host.c_str(), target_.port, &timeout);
      status != AMQP_STATUS_OK) {
    return Status(Code::unavailable, where + ": " + amqp_error_string2(status));
  }
  amqp_set_rpc_timeout(state, &timeout);
  amqp_set_handshake_timeout(state, &timeout);
  std::string password = "guest";
  if (!options_.password_file.empty()) {
    auto read = service::read_secret_file(options_.password_file);
    if (!read) return Status(Code::unavailable, "--events-amqp-password-file " + options_.password_file + ": cannot be read");
    password = std::move(*read);
  }
  // No heartbeats: a connection idle between rounds that the broker or the network
  // dropped fails the next round's publish or confirm, and the relay reconnects.
  const amqp_rpc_reply_t login = amqp_login(state, target_.vhost.c_str(), 1, kFrameBytesMax, 0,
                                            AMQP_SASL_METHOD_PLAIN, target_.user.c_str(), password.c_str());
  if (auto error = reply_error(login, where + ": login"); !error.empty()) return Status(Code::unavailable, error);
  amqp_channel_open(state, kChannel);
  if (auto error = reply_error(amqp_get_rpc_reply(state), where + ": channel"); !error.empty()) {
    return Status(Code::unavailable, error);
  }
  amqp_confirm_select(state, kChannel);
  if (auto error = reply_error(amqp_get_rpc_reply(state), where + ": confirm mode"); !error.empty()) {
    return Status(Code::unavailable, error);
  }
  amqp_exchange_declare(state, kChannel, bytes_of(options_.exchange), bytes_of("topic"), /*passive=*/0,
                        /*durable=*/1, /*auto_delete=*/0, /*internal=*/0, amqp_empty_table);
  if (auto error = reply_error(amqp_get_rpc_reply(state), where + ": exchange " + options_.exchange);
      !error.empty()) {
    return Status(Code::unavailable, error);
  }
  std::lock_guard lock(connection_mutex_);
  connection_ = std::move(connection);
  return {};
}

EventSink::Delivered AmqpSink::deliver(std::span<const core::StoredEvent> events) {
  Delivered delivered;
  if (!connection_) {
    if (Status status = connect(); !status.ok()) {
      delivered.status = std::move(status);
      return delivered;
    }
  }
  Connection& c = *connection_;
  amqp_connection_state_t state = c.state;
  const uint64_t first_tag = c.next_tag;
  std::string body;
  for (const auto& event : events) {
    body.clear();
    core::append_event_json(event, body);
    const std::string id = std::to_string(event.id);
    amqp_basic_properties_t properties{};
    properties._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
                        AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_TIMESTAMP_FLAG;
    properties.content_type = bytes_of("application/json");
    properties.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    properties.message_id = bytes_of(id);
    properties.type = bytes_of(event.type);
    properties.timestamp = static_cast<uint64_t>(event.occurred_at_ms / 1000);
    const int status = amqp_basic_publish(state, kChannel, bytes_of(options_.exchange), bytes_of(event.type),
                                          /*mandatory=*/0, /*immediate=*/0, &properties, bytes_of(body));
    if (status != AMQP_STATUS_OK) {
      disconnect();
      delivered.status = Status(Code::unavailable, std::string("publish: ") + amqp_error_string2(status));
      return delivered;
    }
    ++c.next_tag;
  }
  // The confirms, within the timeout. A broker may ack out of order (messages routed to
  // different queues): what counts is the prefix acked without a hole.
  const uint64_t last_tag = c.next_tag - 1;
  uint64_t confirmed_through = first_tag - 1;
  std::vector<bool> acked(events.size(), false);
  auto ack_through = [&](uint64_t tag, bool multiple) {
    if (tag < first_tag || tag > last_tag) return;
    for (uint64_t t = multiple ? first_tag : tag; t <= tag; ++t) acked[t - first_tag] = true;
    while (confirmed_through < last_tag && acked[confirmed_through + 1 - first_tag]) ++confirmed_through;
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.timeout_ms);
  while (confirmed_through < last_tag) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      disconnect();
      delivered.status = Status(Code::unavailable, "no confirmation from the broker within " +
                                                       std::to_string(options_.timeout_ms) + " ms");
      break;
    }
    timeval wait = timeval_of(left.count());
    amqp_frame_t frame;
    const int status = amqp_simple_wait_frame_noblock(state, &frame, &wait);
    if (status == AMQP_STATUS_TIMEOUT) continue;
    if (status != AMQP_STATUS_OK) {
      disconnect();
      delivered.status = Status(Code::unavailable, std::string("confirms: ") + amqp_error_string2(status));
      break;
    }
    if (frame.frame_type != AMQP_FRAME_METHOD) {
      amqp_maybe_release_buffers_on_channel(state, frame.channel);
      continue;
    }
    if (frame.payload.method.id == AMQP_BASIC_ACK_METHOD) {
      const auto* ack = static_cast<amqp_basic_ack_t*>(frame.payload.method.decoded);
      ack_through(ack->delivery_tag, ack->multiple != 0);
      // A long-lived connection: each decoded frame's memory goes back once read.
      amqp_maybe_release_buffers_on_channel(state, frame.channel);
      continue;
    }
    if (frame.payload.method.id == AMQP_BASIC_NACK_METHOD) {
      // What was acked before it counts; from the first hole on, published again. The
      // frame lives in the connection's memory: read before the connection goes.
      const uint64_t tag = static_cast<amqp_basic_nack_t*>(frame.payload.method.decoded)->delivery_tag;
      disconnect();
      delivered.status =
          Status(Code::unavailable, "the broker refused event (delivery tag " + std::to_string(tag) + ")");
      break;
    }
    if (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD || frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD) {
      disconnect();
      delivered.status = Status(Code::unavailable, "the broker closed the channel");
      break;
    }
  }
  delivered.confirmed = static_cast<size_t>(confirmed_through - (first_tag - 1));
  if (connection_) amqp_maybe_release_buffers(connection_->state);
  return delivered;
}

}  // namespace balanced::jobs
