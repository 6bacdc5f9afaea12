#include "redis/pipeline.h"

#include "observe/log.h"

namespace balanced::redis {

Pipeline::Pipeline(Client& client, PipelineOptions options)
    : client_(client), options_(options) {
  thread_ = std::thread([this] {
    observe::name_this_thread("redis-io");
    run();
  });
}

Pipeline::~Pipeline() { stop(); }

bool Pipeline::submit(Commands& commands, Done& done) {
  {
    MutexLock lock(mutex_);
    if (stopping_ || queued_commands_ + commands.size() > options_.queue_commands_max) {
      return false;
    }
    queued_commands_ += commands.size();
    queue_.push_back(Request{std::move(commands), std::move(done)});
    // Only the first request of a round needs to wake the thread.
    if (queue_.size() > 1) return true;
  }
  queued_.notify_one();
  return true;
}

void Pipeline::stop() {
  {
    MutexLock lock(mutex_);
    stopping_ = true;
  }
  queued_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void Pipeline::run() {
  std::vector<Request> round;
  Commands flat;
  for (;;) {
    round.clear();
    {
      MutexLock lock(mutex_);
      lock.wait(queued_, [&]() REQUIRES(mutex_) { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued is answered
      // Whole requests, up to round_commands_max commands (at least one request).
      size_t commands = 0;
      while (!queue_.empty() &&
             (round.empty() || commands + queue_.front().commands.size() <= options_.round_commands_max)) {
        commands += queue_.front().commands.size();
        round.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      queued_commands_ -= commands;
    }
    flat.clear();
    for (auto& request : round) {
      for (auto& command : request.commands) flat.push_back(std::move(command));
    }
    std::vector<Result<Reply>> replies = client_.run_many(flat);
    size_t next = 0;
    for (auto& request : round) {
      std::vector<Result<Reply>> mine;
      mine.reserve(request.commands.size());
      for (auto& command : request.commands) {
        command = std::move(flat[next]);
        mine.push_back(std::move(replies[next]));
        ++next;
      }
      request.done(std::move(request.commands), std::move(mine));
    }
  }
}

}  // namespace balanced::redis
