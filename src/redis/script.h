// A Lua script run by its SHA-1 (EVALSHA), so that each call sends 40 bytes instead of
// the script; a node that does not have it yet (new, restarted, failed over) answers
// NOSCRIPT, and the caller sends that call once with the whole script (EVAL), which
// loads it there for the calls after.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

#include "redis/client.h"

namespace balanced::redis {

class Script {
 public:
  explicit Script(std::string_view text);

  // EVALSHA <sha1> 1 <key> <args...>
  Command call(const std::string& key, std::initializer_list<std::string> args) const;
  // A call() with the whole script instead: EVAL <text> 1 <key> <args...>
  Command whole(Command call) const;
  // Whether a reply says the node does not have the script.
  static bool missing(const Result<Reply>& reply);

 private:
  const std::string text_;
  const std::string sha1_;  // hex
};

}  // namespace balanced::redis
