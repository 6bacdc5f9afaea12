#include "redis/pipeline.h"

#include <algorithm>
#include <atomic>

#include "observe/log.h"

namespace balanced::redis {

namespace {

// A request split over several nodes: each part writes its replies (and gives its
// commands back) at the request's own positions; the last part to finish answers.
struct Join {
  Pipeline::Commands commands;
  std::vector<Result<Reply>> replies;
  Pipeline::Done done;
  std::atomic<size_t> parts_left{0};
};

}  // namespace

Pipeline::Pipeline(Client& client, PipelineOptions options) : client_(client), options_(options) {}

Pipeline::~Pipeline() { stop(); }

Pipeline::Lane& Pipeline::lane_for(const Client::Node* node) {
  for (auto& lane : lanes_) {
    if (lane->node == node) return *lane;
  }
  if (!lanes_.empty() && lanes_.size() >= options_.lanes_max) return *lanes_.back();
  lanes_.push_back(std::make_unique<Lane>());
  Lane& lane = *lanes_.back();
  lane.node = node;
  lane.thread = std::thread([this, &lane] {
    observe::name_this_thread("redis-io");
    run(lane);
  });
  return lane;
}

bool Pipeline::submit(Commands& commands, Done& done) {
  if (commands.empty()) return false;
  std::vector<Lane*> woken;  // lanes whose queue this request made non-empty
  {
    MutexLock lock(mutex_);
    if (stopping_) return false;
    // Only the first request in a lane's queue needs to wake its thread.
    const auto enqueue = [&](Lane& lane, Request&& request) REQUIRES(mutex_) {
      if (lane.queue.empty()) woken.push_back(&lane);
      lane.queued_commands += request.commands.size();
      lane.queue.push_back(std::move(request));
    };
    Lane& first = lane_for(client_.route(commands.front().first));
    const bool one_lane = std::all_of(commands.begin() + 1, commands.end(), [&](const auto& command)
                                          REQUIRES(mutex_) { return &lane_for(client_.route(command.first)) == &first; });
    if (one_lane) {  // the usual case: one key, or keys on one node
      if (first.queued_commands + commands.size() > options_.queue_commands_max) return false;
      enqueue(first, Request{std::move(commands), std::move(done)});
    } else {
      // Which lane each command goes to, and whether every lane has room.
      std::vector<Lane*> lane_of(commands.size());
      std::vector<std::pair<Lane*, size_t>> counts;  // lane, commands for it
      for (size_t i = 0; i < commands.size(); ++i) {
        lane_of[i] = &lane_for(client_.route(commands[i].first));
        auto it = std::find_if(counts.begin(), counts.end(), [&](const auto& c) { return c.first == lane_of[i]; });
        if (it == counts.end()) {
          counts.push_back({lane_of[i], 1});
        } else {
          ++it->second;
        }
      }
      for (const auto& [lane, count] : counts) {
        if (lane->queued_commands + count > options_.queue_commands_max) return false;
      }
      auto join = std::make_shared<Join>();
      join->replies.resize(commands.size(), Error{Code::unavailable, "not sent"});
      join->parts_left = counts.size();
      for (const auto& [lane, count] : counts) {
        Request part;
        std::vector<size_t> positions;
        for (size_t i = 0; i < commands.size(); ++i) {
          if (lane_of[i] != lane) continue;
          positions.push_back(i);
          part.commands.push_back(std::move(commands[i]));
        }
        part.done = [join, positions = std::move(positions)](Commands&& sent,
                                                            std::vector<Result<Reply>>&& replies) {
          for (size_t k = 0; k < positions.size(); ++k) {
            join->commands[positions[k]] = std::move(sent[k]);
            join->replies[positions[k]] = std::move(replies[k]);
          }
          if (join->parts_left.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            join->done(std::move(join->commands), std::move(join->replies));
          }
        };
        enqueue(*lane, std::move(part));
      }
      // No part can run before the lock is released: these are set in time.
      join->commands.resize(commands.size());
      join->done = std::move(done);
      commands.clear();
    }
  }
  for (Lane* lane : woken) lane->queued.notify_one();
  return true;
}

void Pipeline::stop() {
  std::vector<Lane*> lanes;
  {
    MutexLock lock(mutex_);
    stopping_ = true;
    for (auto& lane : lanes_) lanes.push_back(lane.get());
  }
  for (Lane* lane : lanes) lane->queued.notify_one();
  for (Lane* lane : lanes) {
    if (lane->thread.joinable()) lane->thread.join();
  }
}

void Pipeline::run(Lane& lane) {
  std::vector<Request> round;
  Commands flat;
  for (;;) {
    round.clear();
    {
      MutexLock lock(mutex_);
      lock.wait(lane.queued, [&]() REQUIRES(mutex_) { return stopping_ || !lane.queue.empty(); });
      if (lane.queue.empty()) return;  // stopping, and everything queued is answered
      // Whole requests, up to round_commands_max commands (at least one request).
      size_t commands = 0;
      while (!lane.queue.empty() &&
             (round.empty() || commands + lane.queue.front().commands.size() <= options_.round_commands_max)) {
        commands += lane.queue.front().commands.size();
        round.push_back(std::move(lane.queue.front()));
        lane.queue.pop_front();
      }
      lane.queued_commands -= commands;
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
