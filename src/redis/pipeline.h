// Redis off the caller's thread: one `redis-io` thread sends every queued command, from
// every caller, pipelined (one round trip per node per round), and hands each caller its
// replies through a callback.
//
// The HTTP workers and the engine's committers never wait on Redis: a slow or stopped node
// holds only this thread, for at most the client's timeout per round, while requests
// queue (bounded by queue_commands_max; past it, submit refuses at once). Callbacks run
// on the redis-io thread, in submission order, and must not block: they hand work back to
// their own thread (an HTTP connection's executor) or finish something small.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/mutex.h"
#include "redis/client.h"

namespace balanced::redis {

struct PipelineOptions {
  size_t queue_commands_max = 65'536;  // commands waiting for a round, at most
  size_t round_commands_max = 4'096;   // commands sent in one round, at most
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

  // Queues commands for one of the next rounds, taking (moving from) both arguments;
  // `done` gets them back with their replies, on the redis-io thread. Returns false, and
  // leaves both arguments as they were, when the queue is full or the pipeline has
  // stopped: the caller then answers on its own thread. Thread-safe.
  bool submit(Commands& commands, Done& done);
  // Refuses new work, answers everything queued, and joins the thread. Idempotent.
  void stop();

 private:
  struct Request {
    Commands commands;
    Done done;
  };
  void run();

  Client& client_;
  const PipelineOptions options_;
  Mutex mutex_;
  std::condition_variable queued_;
  std::deque<Request> queue_ GUARDED_BY(mutex_);
  size_t queued_commands_ GUARDED_BY(mutex_) = 0;
  bool stopping_ GUARDED_BY(mutex_) = false;
  std::thread thread_;
};

}  // namespace balanced::redis
