// Redis off the caller's thread: callers queue commands with a callback and go on; a
// `redis-io` thread per Redis node sends everything queued for its node, from every
// caller, pipelined (one round trip per round), and hands each caller its replies.
//
// The HTTP workers and the engine's committers never wait on Redis, and a slow or stopped
// node holds only its own thread, for at most the client's timeout per round, while the
// other nodes' keys are answered. Queues are bounded (queue_commands_max per node; past
// it, submit refuses at once). A request whose keys live on several nodes is split, and
// its callback runs once every node has answered. Callbacks run on a redis-io thread and
// must not block: they hand work back to their own thread (an HTTP connection's
// executor) or finish something small.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/mutex.h"
#include "redis/client.h"

namespace balanced::redis {

struct PipelineOptions {
  size_t queue_commands_max = 65'536;  // commands waiting for a round, per node, at most
  size_t round_commands_max = 4'096;   // commands sent in one round, at most
  size_t lanes_max = 64;               // redis-io threads (nodes) at most; more share the last
};

class Pipeline {
 public:
  using Commands = std::vector<std::pair<std::string, Command>>;  // key, command
  // One submit()'s commands back, and their replies in the same order.
  using Done = std::function<void(Commands&&, std::vector<Result<Reply>>&&)>;

  // The client must outlive the pipeline.
  Pipeline(Client& client, PipelineOptions options);
  // Stops after answering everything queued (see stop()).
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Queues commands for the next rounds of their nodes, taking (moving from) both
  // arguments; `done` gets them back with their replies, on a redis-io thread. Returns
  // false, and leaves both arguments as they were, when a node's queue is full or the
  // pipeline has stopped: the caller then answers on its own thread. Thread-safe.
  bool submit(Commands& commands, Done& done);
  // Refuses new work, answers everything queued, and joins the threads. Idempotent.
  void stop();

 private:
  struct Request {
    Commands commands;
    Done done;
  };
  struct Lane {
    const Client::Node* node = nullptr;
    std::condition_variable queued;
    std::deque<Request> queue;  // guarded by Pipeline::mutex_
    size_t queued_commands = 0;  // guarded by Pipeline::mutex_
    std::thread thread;
  };
  Lane& lane_for(const Client::Node* node) REQUIRES(mutex_);
  void run(Lane& lane);

  Client& client_;
  const PipelineOptions options_;
  Mutex mutex_;  // every lane's queue
  std::vector<std::unique_ptr<Lane>> lanes_ GUARDED_BY(mutex_);  // never shrinks
  bool stopping_ GUARDED_BY(mutex_) = false;
};

}  // namespace balanced::redis
