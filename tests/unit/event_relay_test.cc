// The change feed's relay over the in-memory twins (store, lease, sink): order, resume
// from the stored position, retries after a failure, no delivery without the lease; and
// the pure parts of the two real sinks (the webhook signature, the AMQP URL).
#include "jobs/event_relay.h"

#include <gtest/gtest.h>

#include <chrono>
#include <limits>
#include <mutex>
#include <thread>

#include "jobs/amqp_sink.h"
#include "jobs/webhook_sink.h"
#include "storage/memory_store.h"

namespace balanced::jobs {
namespace {

using namespace std::chrono_literals;

// Records what it is given; while `failing`, fails every event past the first
// `confirm_before_failing` it ever took.
class RecordingSink final : public EventSink {
 public:
  std::string name() const override { return "recording"; }
  Delivered deliver(std::span<const core::StoredEvent> events) override {
    std::lock_guard lock(mutex);
    Delivered delivered;
    for (const auto& event : events) {
      if (failing && ids.size() >= confirm_before_failing) {
        ++failures;
        delivered.status = Status(Code::unavailable, "target down");
        return delivered;
      }
      ids.push_back(event.id);
      ++delivered.confirmed;
    }
    return delivered;
  }
  std::vector<int64_t> seen() {
    std::lock_guard lock(mutex);
    return ids;
  }
  std::mutex mutex;
  std::vector<int64_t> ids;
  bool failing = false;
  size_t confirm_before_failing = 0;
  int failures = 0;
};

class SwitchLease final : public Lease {
 public:
  Result<int64_t> hold() override {
    if (!held) return Error{Code::forbidden, "another replica holds it"};
    return int64_t{7};
  }
  void release() override {}
  std::atomic<bool> held{true};
};

void open_accounts(storage::MemoryStore& store, int first, int count) {
  for (int i = first; i < first + count; ++i) {
    std::vector<core::Operation> operations{core::CreateAccount{"r" + std::to_string(i), "USD", 0, 0, "test"}};
    ASSERT_TRUE(store.apply(operations, 1'700'000'000'000 + i).ok());
  }
}

bool wait_until(const std::function<bool()>& done) {
  for (int i = 0; i < 500; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

const EventRelayOptions kFast{.batch_max = 4, .poll_ms = 5, .lease_wait_ms = 5, .retry_initial_ms = 5, .retry_max_ms = 20};

TEST(EventRelay, DeliversInOrderAndResumesFromTheStoredPosition) {
  storage::MemoryStore store;
  SwitchLease lease;
  observe::Registry registry;
  ASSERT_NO_FATAL_FAILURE(open_accounts(store, 0, 10));  // events 1..10
  auto sink = std::make_unique<RecordingSink>();
  RecordingSink& first = *sink;
  {
    EventRelay relay(store, lease, std::move(sink), registry, kFast);  // owns the sink
    ASSERT_TRUE(wait_until([&] { return first.seen().size() == 10; }));
    ASSERT_TRUE(wait_until([&] { return store.relay_position("recording").value() == 10; }));
    EXPECT_EQ(first.seen(), (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  }
  // Another runner (a restart, a new lease holder) starts after the stored position.
  ASSERT_NO_FATAL_FAILURE(open_accounts(store, 10, 3));  // events 11..13
  auto next = std::make_unique<RecordingSink>();
  RecordingSink& second = *next;
  observe::Registry other;
  EventRelay relay(store, lease, std::move(next), other, kFast);
  ASSERT_TRUE(wait_until([&] { return second.seen().size() == 3; }));
  EXPECT_EQ(second.seen(), (std::vector<int64_t>{11, 12, 13}));
}

TEST(EventRelay, AFailedRoundIsRetriedFromTheFirstUnconfirmedEvent) {
  storage::MemoryStore store;
  SwitchLease lease;
  observe::Registry registry;
  ASSERT_NO_FATAL_FAILURE(open_accounts(store, 0, 6));
  auto sink = std::make_unique<RecordingSink>();
  RecordingSink& recording = *sink;
  recording.failing = true;
  recording.confirm_before_failing = 2;  // 1 and 2 go, then 3 fails, and fails again
  EventRelay relay(store, lease, std::move(sink), registry, kFast);
  ASSERT_TRUE(wait_until([&] {
    std::lock_guard lock(recording.mutex);
    return recording.failures >= 3;
  }));
  {
    std::lock_guard lock(recording.mutex);
    recording.failing = false;
  }
  ASSERT_TRUE(wait_until([&] { return recording.seen().size() >= 6 && recording.seen().back() == 6; }));
  // 1, 2, then after the failures 3.. in order: nothing lost, nothing out of order.
  const auto ids = recording.seen();
  ASSERT_GE(ids.size(), 6u);
  EXPECT_EQ(ids.front(), 1);
  for (size_t i = 1; i < ids.size(); ++i) EXPECT_LE(ids[i], ids[i - 1] + 1) << i;
  EXPECT_EQ(store.relay_position("recording").value() >= 2, true);
}

TEST(EventRelay, NothingIsDeliveredWithoutTheLease) {
  storage::MemoryStore store;
  SwitchLease lease;
  lease.held = false;
  observe::Registry registry;
  ASSERT_NO_FATAL_FAILURE(open_accounts(store, 0, 3));
  auto sink = std::make_unique<RecordingSink>();
  RecordingSink& recording = *sink;
  EventRelay relay(store, lease, std::move(sink), registry, kFast);
  std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(recording.seen().empty());
  lease.held = true;
  ASSERT_TRUE(wait_until([&] { return recording.seen().size() == 3; }));
}

TEST(EventRelay, ARelayNewToALedgerStartsAtTheOldestEventKept) {
  storage::MemoryStore store;
  SwitchLease lease;
  observe::Registry registry;
  ASSERT_NO_FATAL_FAILURE(open_accounts(store, 0, 5));
  ASSERT_EQ(store.prune_events(1'800'000'000'000, 3, std::numeric_limits<int64_t>::max()).value(), 3);  // 1..3 gone
  auto sink = std::make_unique<RecordingSink>();
  RecordingSink& recording = *sink;
  EventRelay relay(store, lease, std::move(sink), registry, kFast);
  ASSERT_TRUE(wait_until([&] { return recording.seen().size() == 2; }));
  EXPECT_EQ(recording.seen(), (std::vector<int64_t>{4, 5}));
}

TEST(WebhookSink, TheSignatureHasOneV1PerSecretOverTimeDotBody) {
  // HMAC-SHA256("k1", "1700000000.{}") and ("k2", ...), as `openssl dgst -sha256 -hmac`.
  EXPECT_EQ(webhook_signature({"k1", "k2"}, 1'700'000'000, "{}"),
            "t=1700000000,v1=785007fcdfc0a1ff84024b971255b4ed6d6252a8ab40f7c5a4ea4f4da336a83b,v1=19aa0643fc69758f973f49d7028570bd88d45268d61a54cc708b745d0ab9aac5");
  EXPECT_NE(webhook_signature({"k1"}, 1'700'000'000, "{}"), webhook_signature({"k1"}, 1'700'000'001, "{}"));
}

TEST(AmqpSink, TheUrlNamesHostPortUserAndVhost) {
  auto target = parse_amqp_url("amqp://relay@mq.internal:5673/ledger%2Fprod");
  ASSERT_TRUE(target.ok()) << target.error().detail;
  EXPECT_FALSE(target.value().tls);
  EXPECT_EQ(target.value().host, "mq.internal");
  EXPECT_EQ(target.value().port, 5673);
  EXPECT_EQ(target.value().user, "relay");
  EXPECT_EQ(target.value().vhost, "ledger/prod");
  auto defaults = parse_amqp_url("amqps://mq.internal");
  ASSERT_TRUE(defaults.ok());
  EXPECT_TRUE(defaults.value().tls);
  EXPECT_EQ(defaults.value().port, 5671);
  EXPECT_EQ(defaults.value().user, "guest");
  EXPECT_EQ(defaults.value().vhost, "/");
  EXPECT_EQ(parse_amqp_url("amqp://127.0.0.1:5672/%2f").value().vhost, "/");
  for (const char* bad : {"http://mq:5672", "amqp://user:secret@mq:5672", "amqp://", "amqp://mq:0"}) {
    EXPECT_FALSE(parse_amqp_url(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace balanced::jobs
