// The Redis cache, the cluster client and the lease, against real redis-server processes
// this test starts: one plain server, and a 3-master cluster.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <map>
#include <sstream>
#include <thread>

#include "cache/redis_cache.h"
#include "jobs/lease.h"
#include "support/accounts.h"
#include "support/certificates.h"
#include "support/servers.h"

namespace balanced::cache {
namespace {

using redis::Client;
using redis::ClientOptions;

using testing::test_account;
constexpr auto account = test_account;

ClientOptions options_for(const std::string& url) {
  auto options = redis::parse_url(url);
  EXPECT_TRUE(options.ok());
  return options.value();
}

TEST(RedisRouting, KeySlotsFollowTheClusterSpecification) {
  // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
  EXPECT_EQ(redis::key_slot("foo"), 12182);
  EXPECT_EQ(redis::key_slot("bar"), 5061);
  EXPECT_EQ(redis::key_slot("123456789"), 0x31C3);
  EXPECT_EQ(redis::key_slot("{user1000}.following"), redis::key_slot("{user1000}.followers"));
  EXPECT_EQ(redis::key_slot("{user1000}.following"), redis::key_slot("user1000"));
  EXPECT_EQ(redis::key_slot("foo{}{bar}"), redis::key_slot("foo{}{bar}"));  // empty tag: whole key
  EXPECT_NE(redis::key_slot("foo{}{bar}"), redis::key_slot("bar"));
  EXPECT_EQ(redis::key_slot("foo{{bar}}zap"), redis::key_slot("{bar"));
}

TEST(RedisRouting, UrlsAreParsedOrRejected) {
  auto single = redis::parse_url("redis://127.0.0.1:6379");
  ASSERT_TRUE(single.ok());
  EXPECT_FALSE(single.value().cluster);
  auto cluster = redis::parse_url("redis-cluster://a:7000,b:7001,c:7002");
  ASSERT_TRUE(cluster.ok());
  EXPECT_TRUE(cluster.value().cluster);
  EXPECT_EQ(cluster.value().seeds.size(), 3u);
  EXPECT_EQ(cluster.value().seeds[1], (redis::Endpoint{"b", 7001}));
  EXPECT_FALSE(cluster.value().security.tls);
  EXPECT_FALSE(cluster.value().security.authenticates());
  auto managed = redis::parse_url("rediss://app:p%40ss@cache.example.com:6380");
  ASSERT_TRUE(managed.ok());
  EXPECT_TRUE(managed.value().security.tls);
  EXPECT_FALSE(managed.value().cluster);
  EXPECT_EQ(managed.value().security.user, "app");
  EXPECT_EQ(managed.value().security.password, "p@ss");
  EXPECT_EQ(managed.value().seeds[0], (redis::Endpoint{"cache.example.com", 6380}));
  auto tls_cluster = redis::parse_url("rediss-cluster://:token@a:7000,[::1]:7001");
  ASSERT_TRUE(tls_cluster.ok());
  EXPECT_TRUE(tls_cluster.value().cluster);
  EXPECT_TRUE(tls_cluster.value().security.tls);
  EXPECT_EQ(tls_cluster.value().security.user, "");
  EXPECT_EQ(tls_cluster.value().security.password, "token");
  EXPECT_EQ(tls_cluster.value().seeds[1], (redis::Endpoint{"::1", 7001}));
  // The flags win over the URL.
  redis::ClientOptions overridden = managed.value();
  redis::apply({.ca_file = "/ca.pem", .user = "other", .password_file = "/secret"}, overridden);
  EXPECT_EQ(overridden.security.user, "other");
  EXPECT_EQ(overridden.security.ca_file, "/ca.pem");
  EXPECT_EQ(overridden.security.password_file, "/secret");
  for (const char* bad : {"redis://", "redis://host", "redis://h:0", "redis://h:70000",
                          "redis://a:1,b:2", "redis-cluster://a:1,,b:2", "http://a:1",
                          "rediss://a:1/2", "redisss://a:1", "rediss://a:1,b:2"}) {
    EXPECT_FALSE(redis::parse_url(bad).ok()) << bad;
  }
}

TEST(RedisCacheCodec, RoundTripsAndRejectsForeignValues) {
  const auto a = account("alice", 42, -7);
  auto back = RedisCache::decode("alice", RedisCache::encode(a));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, a);
  for (const char* bad : {"", "x|1|0|USD|1|2", "1|2|3", "1|2|3|USD|4", "1|2|3|USD|4|x"}) {
    EXPECT_FALSE(RedisCache::decode("a", bad).has_value()) << bad;
  }
}

class SingleRedis : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.start()) << server_.error(); }
  testing::TempDir dir_;
  testing::Redis server_{dir_.path() / "redis", false};
};

TEST_F(SingleRedis, ReadsWhatWasWrittenWithATtl) {
  Client client(options_for("redis://" + server_.address()));
  RedisCache cache(client, RedisCacheOptions{.ttl_ms = 60'000});
  EXPECT_FALSE(cache.get("alice").has_value());
  cache.put_if_newer(account("alice", 3, 100));
  auto got = cache.get("alice");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->balance, 100);
  EXPECT_EQ(got->version, 3);
  const int64_t ttl = std::stoll(server_.cli({"PTTL", "balanced:account:v2:alice"}).second);
  EXPECT_GT(ttl, 50'000);
  EXPECT_LE(ttl, 60'000);
  EXPECT_EQ(cache.stats().hits, 1u);
  EXPECT_EQ(cache.stats().misses, 1u);
}

TEST_F(SingleRedis, AnEntryExpiresAfterItsTtl) {
  Client client(options_for("redis://" + server_.address()));
  RedisCache cache(client, RedisCacheOptions{.ttl_ms = 1000});
  cache.put_if_newer(account("brief", 1, 5));
  EXPECT_TRUE(cache.get("brief").has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  EXPECT_FALSE(cache.get("brief").has_value());
}

TEST_F(SingleRedis, AnOlderVersionNeverReplacesANewerOne) {
  Client client(options_for("redis://" + server_.address()));
  RedisCache cache(client, RedisCacheOptions{});
  cache.put_if_newer(account("a", 5, 50));
  cache.put_if_newer(account("a", 3, 30));  // a slow reader's old row
  cache.put_if_newer(account("a", 5, 99));  // same version: not newer either
  EXPECT_EQ(cache.get("a")->balance, 50);
  EXPECT_EQ(cache.stats().stale_writes_ignored, 2u);
  // Versions compare exactly beyond 2^53, where Lua numbers would round.
  cache.put_if_newer(account("big", 9007199254740993, 1));
  cache.put_if_newer(account("big", 9007199254740992, 2));
  EXPECT_EQ(cache.get("big")->balance, 1);
  cache.put_if_newer(account("big", 10000000000000000, 3));
  EXPECT_EQ(cache.get("big")->balance, 3);

  // Racing writers, each with its own versions: the survivor is the highest.
  std::vector<std::thread> writers;
  for (int w = 0; w < 6; ++w) {
    writers.emplace_back([&, w] {
      for (int v = 0; v < 200; ++v) {
        const int64_t version = v * 6 + w;
        cache.put_if_newer(account("race", version, version));
      }
    });
  }
  for (auto& writer : writers) writer.join();
  EXPECT_EQ(cache.get("race")->version, 199 * 6 + 5);
}

TEST_F(SingleRedis, ADeadRedisIsAMissAndItsBreakerRecovers) {
  auto options = options_for("redis://" + server_.address());
  options.open_ms = 300;
  Client client(options);
  RedisCache cache(client, RedisCacheOptions{});
  cache.put_if_newer(account("a", 1, 10));
  ASSERT_TRUE(cache.get("a").has_value());
  server_.kill();
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(cache.get("a").has_value());
  cache.put_if_newer(account("a", 2, 20));  // never throws, never blocks the commit long
  EXPECT_GE(cache.stats().errors, 10u);
  // While the breaker is open a read does not even try to connect.
  auto open = client.run("a", {"PING"});
  ASSERT_FALSE(open.ok());
  EXPECT_NE(open.error().detail.find("circuit open"), std::string::npos) << open.error().detail;
  ASSERT_TRUE(server_.start()) << server_.error();  // same port, empty
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  cache.put_if_newer(account("a", 3, 30));
  ASSERT_TRUE(cache.get("a").has_value());
  EXPECT_EQ(cache.get("a")->version, 3);
}

// A write-through that fails (here Redis holds writes past the client's timeout, as a
// failover or a stalled node would) leaves the entry older than the database. The account
// then reads as a miss on this replica, so from the database, and its snapshot is
// written again until it lands; then the cache answers with it.
TEST_F(SingleRedis, AFailedWriteIsRetriedAndTheOlderEntryIsNotReadMeanwhile) {
  Client client(options_for("redis://" + server_.address()));  // 200 ms per reply
  RedisCache cache(client, RedisCacheOptions{.retry_interval_ms = 100});
  cache.put_if_newer(account("a", 1, 10));
  ASSERT_EQ(cache.get("a")->version, 1);
  Client admin(options_for("redis://" + server_.address()));
  ASSERT_TRUE(admin.run("pause", {"CLIENT", "PAUSE", "1500", "WRITE"}).ok());
  std::promise<void> answered;
  cache.put_many_async({account("a", 2, 20)}, [&] { answered.set_value(); });
  answered.get_future().wait();
  EXPECT_GE(cache.stats().errors, 1u);
  EXPECT_EQ(cache.stats().unsettled, 1u);
  const std::string key = "balanced:account:v2:a";
  auto held = admin.run(key, {"GET", key});
  ASSERT_TRUE(held.ok());
  EXPECT_TRUE(held.value().text.starts_with("1|")) << "Redis still holds the older entry";
  EXPECT_FALSE(cache.get("a").has_value()) << "the older entry must not be read";
  bool missed = false;
  cache.get_async("a", [&](std::optional<core::Account> got) { missed = !got.has_value(); });
  EXPECT_TRUE(missed);
  // Writes resume; a retry lands.
  for (int i = 0; i < 100 && cache.stats().unsettled > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(cache.stats().unsettled, 0u);
  ASSERT_TRUE(cache.get("a").has_value());
  EXPECT_EQ(cache.get("a")->version, 2);
  EXPECT_EQ(cache.get("a")->balance, 20);
}

// Past its bound, a failed write is counted as dropped, not kept.
TEST_F(SingleRedis, UnsettledAccountsAreBounded) {
  auto options = options_for("redis://" + server_.address());
  Client client(options);
  RedisCache cache(client, RedisCacheOptions{.retry_interval_ms = 60'000, .unsettled_accounts_max = 2});
  cache.put_if_newer(account("warm", 1, 1));
  server_.kill();
  cache.put_many_if_newer(std::vector<core::Account>{account("a", 1, 1), account("b", 1, 1), account("c", 1, 1)});
  EXPECT_EQ(cache.stats().unsettled, 2u);
  EXPECT_EQ(cache.stats().unsettled_dropped, 1u);
  EXPECT_FALSE(cache.get("a").has_value());
}

TEST_F(SingleRedis, AsynchronousCallsFromManyThreadsAreEachAnsweredOnce) {
  Client client(options_for("redis://" + server_.address()));
  RedisCache cache(client, RedisCacheOptions{});
  // Loads the script: a write whose EVALSHA the node does not know yet is sent again
  // with EVAL after its round, so a read in that same round could miss it.
  cache.put_if_newer(account("warm", 1, 1));
  constexpr int threads = 4, per_thread = 300;
  std::atomic<int> puts_done{0}, gets_done{0}, hits{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < threads; ++t) {
    callers.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        const std::string number = "t" + std::to_string(t) + "-" + std::to_string(i);
        // A write, then a read queued behind it: one redis-io thread, in order.
        cache.put_many_async({account(number, 1, i)}, [&] { ++puts_done; });
        cache.get_async(number, [&, i](std::optional<core::Account> got) {
          if (got && got->balance == i) ++hits;
          ++gets_done;
        });
      }
    });
  }
  for (auto& caller : callers) caller.join();
  cache.stop();  // answers everything queued first
  EXPECT_EQ(puts_done.load(), threads * per_thread);
  EXPECT_EQ(gets_done.load(), threads * per_thread);
  EXPECT_EQ(hits.load(), threads * per_thread);
  EXPECT_EQ(cache.stats().errors, 0u);
  // Stopped: the calls are answered on the caller's thread.
  bool answered = false;
  cache.get_async("t0-1", [&](std::optional<core::Account> got) { answered = !got.has_value(); });
  EXPECT_TRUE(answered);
  cache.put_many_async({account("t0-1", 2, 7)}, [&] { answered = false; });
  EXPECT_FALSE(answered);
  EXPECT_EQ(cache.get("t0-1")->balance, 7);
}

TEST_F(SingleRedis, AStalledRedisHoldsOnlyTheIoThread) {
  auto options = options_for("redis://" + server_.address());
  options.timeout_ms = 10'000;  // the stall, not a timeout, is what this test sees
  Client client(options);
  RedisCache cache(client, RedisCacheOptions{.pipeline = {.queue_commands_max = 4}});
  cache.put_if_newer(account("a", 1, 10));
  server_.process().pause();
  // Queued, not waited for: each call returns at once, unanswered, while Redis is stopped.
  std::vector<std::promise<std::optional<core::Account>>> reads(3);
  std::vector<std::future<std::optional<core::Account>>> answers;
  for (auto& read : reads) {
    answers.push_back(read.get_future());
    cache.get_async("a", [&read](std::optional<core::Account> got) { read.set_value(got); });
  }
  std::promise<void> written;
  cache.put_many_async({account("a", 2, 20)}, [&] { written.set_value(); });
  for (auto& answer : answers) {
    EXPECT_EQ(answer.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout);
  }
  // A full queue makes a read a miss at once, on the caller's thread (the store answers).
  std::atomic<int> answered_later{0};
  int refused = 0;
  for (int i = 0; i < 8; ++i) {
    auto now = std::make_shared<std::atomic<bool>>(true);
    bool missed_inline = false;
    cache.get_async("a", [&, now](std::optional<core::Account> got) {
      if (*now) {
        missed_inline = !got.has_value();
      } else {
        ++answered_later;
      }
    });
    *now = false;
    refused += missed_inline ? 1 : 0;
  }
  EXPECT_GE(refused, 4);
  server_.process().resume();
  for (auto& answer : answers) {
    ASSERT_EQ(answer.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    auto got = answer.get();
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->balance, 10);  // queued before the write
  }
  EXPECT_EQ(written.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  cache.stop();
  EXPECT_EQ(answered_later.load(), 8 - refused);
  EXPECT_EQ(cache.get("a")->balance, 20);
}

TEST_F(SingleRedis, AWriteTheQueueRefusesIsMadeOnTheCallersThread) {
  Client client(options_for("redis://" + server_.address()));
  RedisCache cache(client, RedisCacheOptions{.pipeline = {.queue_commands_max = 0}});
  bool done = false;
  cache.put_many_async({account("b", 4, 40), account("c", 1, 5)}, [&] { done = true; });
  EXPECT_TRUE(done);  // written before put_many_async returned: never left stale
  EXPECT_EQ(cache.get("b")->balance, 40);
  EXPECT_EQ(cache.get("c")->balance, 5);
  bool missed = false;
  cache.get_async("b", [&](std::optional<core::Account> got) { missed = !got.has_value(); });
  EXPECT_TRUE(missed);
}

TEST_F(SingleRedis, OneLeaseHolderAtATimeWithGrowingFencingTokens) {
  Client client(options_for("redis://" + server_.address()));
  jobs::RedisLease first(client, {.name = "job", .owner = "first", .ttl_ms = 500});
  jobs::RedisLease second(client, {.name = "job", .owner = "second", .ttl_ms = 500});
  auto token = first.hold();
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(second.hold().error().code, Code::forbidden);
  EXPECT_EQ(first.hold().value(), token.value());  // renewal keeps the token
  first.release();
  auto next = second.hold();
  ASSERT_TRUE(next.ok());
  EXPECT_GT(next.value(), token.value());
  // A holder that stops renewing loses the lease when it expires.
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  auto third = first.hold();
  ASSERT_TRUE(third.ok());
  EXPECT_GT(third.value(), next.value());
  EXPECT_EQ(second.hold().error().code, Code::forbidden);
}

// Every cluster test runs twice: on plain TCP, and over TLS (the cluster bus too) with an
// ACL user and the default user off, as a managed Redis Cluster is reached.
class Cluster : public ::testing::TestWithParam<bool> {
 protected:
  bool secure() const { return GetParam(); }
  void SetUp() override {
    testing::RedisSecurity security;
    if (secure()) {
      testing::TestCertificates certificates(dir_.path() / "tls", "redis");
      ASSERT_TRUE(certificates.make()) << certificates.error();
      security = {.certificate = certificates.certificate(), .key = certificates.key(),
                  .ca = certificates.ca(), .user = "balanced", .password = "s3cret"};
    }
    owned_ = std::make_unique<testing::RedisCluster>(dir_.path(), security);
    ASSERT_TRUE(cluster().start()) << cluster().error();
  }
  testing::RedisCluster& cluster() { return *owned_; }
  // The client options for this cluster: its URL, and the CA for TLS.
  ClientOptions cluster_options() {
    ClientOptions options = options_for(cluster().url());
    if (secure()) options.security.ca_file = cluster().node(0).security().ca.string();
    return options;
  }
  std::string node_id(size_t i) {
    auto id = cluster().node(i).cli({"CLUSTER", "MYID"}).second;
    while (!id.empty() && (id.back() == '\n' || id.back() == '\r')) id.pop_back();
    return id;
  }
  // For every slot, the index of the node that serves it, from CLUSTER NODES.
  std::vector<size_t> slot_owners() {
    std::vector<size_t> owners(16384, cluster().size());
    std::istringstream lines(cluster().node(0).cli({"CLUSTER", "NODES"}).second);
    for (std::string line; std::getline(lines, line);) {
      std::istringstream fields(line);
      std::vector<std::string> parts;
      for (std::string part; fields >> part;) parts.push_back(part);
      if (parts.size() < 9) continue;
      size_t node = cluster().size();
      for (size_t i = 0; i < cluster().size(); ++i) {
        if (parts[1].starts_with(cluster().node(i).address() + "@")) node = i;
      }
      for (size_t p = 8; p < parts.size(); ++p) {
        if (parts[p].starts_with("[")) continue;  // a slot in migration
        const size_t dash = parts[p].find('-');
        const int first = std::stoi(parts[p].substr(0, dash));
        const int last = dash == std::string::npos ? first : std::stoi(parts[p].substr(dash + 1));
        for (int slot = first; slot <= last; ++slot) owners[static_cast<size_t>(slot)] = node;
      }
    }
    return owners;
  }
  testing::TempDir dir_;
  std::unique_ptr<testing::RedisCluster> owned_;
};

INSTANTIATE_TEST_SUITE_P(Transports, Cluster, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "TlsAcl" : "Plain";
                         });

TEST_P(Cluster, KeysSpreadOverEveryMasterAndReadBack) {
  Client client(cluster_options());
  RedisCache cache(client, RedisCacheOptions{});
  std::vector<core::Account> accounts;
  for (int i = 0; i < 300; ++i) accounts.push_back(account("acct" + std::to_string(i), 1, i));
  cache.put_many_if_newer(accounts);
  for (int i = 0; i < 300; ++i) {
    auto got = cache.get("acct" + std::to_string(i));
    ASSERT_TRUE(got.has_value()) << i;
    EXPECT_EQ(got->balance, i);
  }
  EXPECT_EQ(cache.stats().errors, 0u);
  for (size_t n = 0; n < cluster().size(); ++n) {
    const int64_t keys = std::stoll(cluster().node(n).cli({"DBSIZE"}).second);
    EXPECT_GT(keys, 50) << "node " << n << " holds too few keys";
  }
  // Stale writes are refused on every node, through the pipelined path too.
  for (auto& a : accounts) a.version = 0;
  cache.put_many_if_newer(accounts);
  EXPECT_EQ(cache.stats().stale_writes_ignored, 300u);
}

TEST_P(Cluster, FollowsAskDuringAndMovedAfterASlotMigration) {
  Client client(cluster_options());
  RedisCache cache(client, RedisCacheOptions{});
  const std::string key = "balanced:account:v2:moving";
  const uint16_t slot = redis::key_slot(key);
  cache.put_if_newer(account("moving", 1, 10));
  const size_t from = slot_owners()[slot];
  ASSERT_LT(from, cluster().size());
  const size_t to = (from + 1) % cluster().size();
  const std::string s = std::to_string(slot);
  auto& source = cluster().node(from);
  auto& target = cluster().node(to);
  ASSERT_EQ(target.cli({"CLUSTER", "SETSLOT", s, "IMPORTING", node_id(from)}).first, 0);
  ASSERT_EQ(source.cli({"CLUSTER", "SETSLOT", s, "MIGRATING", node_id(to)}).first, 0);

  // Mid-migration, a key the source no longer has is answered with ASK. Find one in
  // the same slot (a hash tag shares it) and write it: it must land on the target.
  cache.put_if_newer(account("moving", 2, 20));  // exists on the source: served there
  EXPECT_EQ(cache.get("moving")->version, 2);
  RedisCache tagged(client, RedisCacheOptions{.key_prefix = "{balanced:account:v2:moving}:"});
  tagged.put_if_newer(account("new", 1, 1));
  EXPECT_EQ(std::stoll(target.cli({"CLUSTER", "COUNTKEYSINSLOT", s}).second), 1);

  // Move the key and hand the slot over: the client's table is stale, MOVED corrects it.
  std::vector<std::string> migrate{"MIGRATE", "127.0.0.1", std::to_string(target.port()), "", "0", "5000"};
  if (secure()) migrate.insert(migrate.end(), {"AUTH2", "balanced", "s3cret"});
  migrate.insert(migrate.end(), {"KEYS", key});
  ASSERT_EQ(source.cli(migrate).first, 0);
  for (size_t n = 0; n < cluster().size(); ++n) {
    ASSERT_EQ(cluster().node(n).cli({"CLUSTER", "SETSLOT", s, "NODE", node_id(to)}).first, 0);
  }
  auto got = cache.get("moving");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->version, 2);
  cache.put_if_newer(account("moving", 3, 30));
  EXPECT_EQ(cache.get("moving")->version, 3);
  EXPECT_EQ(std::stoll(target.cli({"CLUSTER", "COUNTKEYSINSLOT", s}).second), 2);
  EXPECT_EQ(cache.stats().errors, 0u);
}

TEST_P(Cluster, AStalledMasterHoldsOnlyItsOwnKeysInThePipeline) {
  auto options = cluster_options();
  options.timeout_ms = 10'000;  // the stall, not a timeout, is what this test sees
  Client client(options);
  ASSERT_TRUE(client.refresh_slots().ok());
  RedisCache cache(client, RedisCacheOptions{});
  const auto owners = slot_owners();
  // One account per master, written (and the script loaded) on every node.
  std::vector<std::string> on_node(cluster().size());
  for (int i = 0; i < 1000; ++i) {
    const std::string number = "n" + std::to_string(i);
    const size_t owner = owners[redis::key_slot("balanced:account:v2:" + number)];
    if (owner < cluster().size() && on_node[owner].empty()) on_node[owner] = number;
  }
  for (size_t node = 0; node < cluster().size(); ++node) {
    ASSERT_FALSE(on_node[node].empty());
    cache.put_if_newer(account(on_node[node], 1, static_cast<int64_t>(node)));
  }
  cluster().node(0).process().pause();
  std::vector<std::promise<std::optional<core::Account>>> reads(cluster().size());
  std::vector<std::future<std::optional<core::Account>>> answers;
  for (size_t node = 0; node < cluster().size(); ++node) {
    answers.push_back(reads[node].get_future());
    cache.get_async(on_node[node], [&reads, node](std::optional<core::Account> got) {
      reads[node].set_value(std::move(got));
    });
  }
  // A write-through that spans the stalled master and a healthy one answers only once both did.
  std::promise<void> written;
  cache.put_many_async({account(on_node[0], 2, 100), account(on_node[1], 2, 101)},
                       [&] { written.set_value(); });
  auto write_answer = written.get_future();
  // The healthy masters' keys are answered while master 0 is stopped.
  for (size_t node = 1; node < cluster().size(); ++node) {
    ASSERT_EQ(answers[node].wait_for(std::chrono::seconds(5)), std::future_status::ready) << node;
    auto got = answers[node].get();
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->balance, static_cast<int64_t>(node));
  }
  EXPECT_EQ(answers[0].wait_for(std::chrono::milliseconds(0)), std::future_status::timeout);
  EXPECT_EQ(write_answer.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout);
  cluster().node(0).process().resume();
  ASSERT_EQ(answers[0].wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(answers[0].get()->balance, 0);
  ASSERT_EQ(write_answer.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(cache.get(on_node[0])->balance, 100);
  EXPECT_EQ(cache.get(on_node[1])->balance, 101);
}

TEST_P(Cluster, AKilledMasterCostsOnlyItsOwnKeys) {
  auto options = cluster_options();
  Client client(options);
  RedisCache cache(client, RedisCacheOptions{});
  std::vector<core::Account> accounts;
  for (int i = 0; i < 120; ++i) accounts.push_back(account("k" + std::to_string(i), 1, i));
  cache.put_many_if_newer(accounts);
  const auto owners = slot_owners();
  cluster().node(2).kill();
  int hits = 0;
  int misses = 0;
  for (int i = 0; i < 120; ++i) {
    const std::string key = "balanced:account:v2:k" + std::to_string(i);
    const bool on_dead = owners[redis::key_slot(key)] == 2;
    auto got = cache.get("k" + std::to_string(i));
    if (on_dead) {
      EXPECT_FALSE(got.has_value());
      ++misses;
    } else {
      EXPECT_TRUE(got.has_value()) << key;
      ++hits;
    }
  }
  EXPECT_GT(hits, 0);
  EXPECT_GT(misses, 0);
  // Writes to the dead node are dropped, the others still land.
  for (auto& a : accounts) a.version = 2;
  cache.put_many_if_newer(accounts);
  for (int i = 0; i < 120; ++i) {
    const std::string key = "balanced:account:v2:k" + std::to_string(i);
    if (owners[redis::key_slot(key)] != 2) EXPECT_EQ(cache.get("k" + std::to_string(i))->version, 2);
  }
}

// DESIGN.md section 12 with Redis Cluster as a managed service runs it: masters with
// replicas. A master killed is replaced by its replica (the cluster's own failover, after
// cluster-node-timeout); the client finds the new master by itself (a failed node makes it
// reload the slot table) and the keys of those slots are read and written again.
TEST(ClusterWithReplicas, AKilledMasterIsReplacedByItsReplicaAndTheClientFollows) {
  testing::TempDir dir;
  testing::RedisCluster cluster(dir.path(), {}, 1);
  ASSERT_TRUE(cluster.start()) << cluster.error();
  auto options = options_for(cluster.url());
  options.open_ms = 200;
  Client client(options);
  RedisCache cache(client, RedisCacheOptions{});
  std::vector<core::Account> accounts;
  for (int i = 0; i < 60; ++i) accounts.push_back(account("r" + std::to_string(i), 1, i));
  cache.put_many_if_newer(accounts);

  // The master serving "r0" and its replica, from CLUSTER NODES: id addr flags master ... slots
  const uint16_t slot = redis::key_slot("balanced:account:v2:r0");
  std::string master_id, master_address, replica_address;
  std::map<std::string, std::string> replica_of;  // master id -> its replica's address
  std::istringstream lines(cluster.node(0).cli({"CLUSTER", "NODES"}).second);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::vector<std::string> parts;
    for (std::string part; fields >> part;) parts.push_back(part);
    if (parts.size() < 8) continue;
    const std::string address = parts[1].substr(0, parts[1].find('@'));
    if (parts[2].find("slave") != std::string::npos) replica_of[parts[3]] = address;
    for (size_t p = 8; p < parts.size(); ++p) {
      const size_t dash = parts[p].find('-');
      if (parts[p].starts_with("[")) continue;
      const int first = std::stoi(parts[p].substr(0, dash));
      const int last = dash == std::string::npos ? first : std::stoi(parts[p].substr(dash + 1));
      if (slot >= first && slot <= last) {
        master_id = parts[0];
        master_address = address;
      }
    }
  }
  ASSERT_FALSE(master_id.empty());
  replica_address = replica_of[master_id];
  ASSERT_FALSE(replica_address.empty()) << "no replica for " << master_address;
  testing::Redis* master = nullptr;
  testing::Redis* replica = nullptr;
  for (size_t i = 0; i < cluster.size(); ++i) {
    if (cluster.node(i).address() == master_address) master = &cluster.node(i);
    if (cluster.node(i).address() == replica_address) replica = &cluster.node(i);
  }
  ASSERT_TRUE(master && replica);
  // The replica holds every write before the master dies (replication is asynchronous:
  // a write in flight at the kill could be lost, and the versioned cache would only miss).
  const auto synced = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (replica->cli({"DBSIZE"}).second != master->cli({"DBSIZE"}).second &&
         std::chrono::steady_clock::now() < synced) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  master->kill();
  // Reads of its slots miss meanwhile (the database answers them); then the promoted
  // replica serves them, found by the client alone.
  std::optional<core::Account> got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!got && std::chrono::steady_clock::now() < deadline) {
    got = cache.get("r0");
    if (!got) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(got.has_value()) << "the promoted replica never served r0";
  EXPECT_EQ(got->balance, 0);
  EXPECT_NE(replica->cli({"ROLE"}).second.find("master"), std::string::npos);
  cache.put_if_newer(account("r0", 2, 100));
  EXPECT_EQ(cache.get("r0")->version, 2);
  // Every other key is there too.
  for (int i = 1; i < 60; ++i) {
    auto other = cache.get("r" + std::to_string(i));
    ASSERT_TRUE(other.has_value()) << i;
    EXPECT_EQ(other->balance, i);
  }
}

}  // namespace
}  // namespace balanced::cache
