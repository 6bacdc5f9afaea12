#include "jobs/lease.h"

namespace balanced::jobs {

namespace {

// KEYS[1] holder, KEYS[2] fence counter; ARGV[1] owner, ARGV[2] TTL ms.
// Returns the owner's fencing token, or -1 when another process holds the lease.
constexpr const char* kHold = R"lua(
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(redis.call('GET', KEYS[2]) or '0')
end
if holder then return -1 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return redis.call('INCR', KEYS[2])
)lua";

// Deletes the holder key only if this owner holds it.
constexpr const char* kRelease = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)lua";

}  // namespace

RedisLease::RedisLease(redis::Client& client, RedisLeaseOptions options)
    : client_(client),
      options_(std::move(options)),
      holder_key_("{" + options_.name + "}:holder"),
      fence_key_("{" + options_.name + "}:fence") {}

Result<int64_t> RedisLease::hold() {
  auto reply = client_.run(holder_key_, {"EVAL", kHold, "2", holder_key_, fence_key_,
                                         options_.owner, std::to_string(options_.ttl_ms)});
  if (!reply.ok()) return reply.error();
  if (reply.value().type != redis::Reply::Type::integer) {
    return Error{Code::unavailable, "lease: unexpected reply " + reply.value().text};
  }
  if (reply.value().integer < 0) return Error{Code::forbidden, "another replica holds the lease"};
  return reply.value().integer;
}

void RedisLease::release() {
  (void)client_.run(holder_key_, {"EVAL", kRelease, "1", holder_key_, options_.owner});
}

}  // namespace balanced::jobs
