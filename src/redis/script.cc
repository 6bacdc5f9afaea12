#include "redis/script.h"

#include <openssl/sha.h>

#include "core/audit.h"

namespace balanced::redis {
namespace {

std::string sha1_hex(std::string_view text) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  return core::to_hex(std::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

}  // namespace

Script::Script(std::string_view text) : text_(text), sha1_(sha1_hex(text)) {}

Command Script::call(const std::string& key, std::initializer_list<std::string> args) const {
  Command command{"EVALSHA", sha1_, "1", key};
  command.insert(command.end(), args.begin(), args.end());
  return command;
}

Command Script::whole(Command call) const {
  call[0] = "EVAL";
  call[1] = text_;
  return call;
}

bool Script::missing(const Result<Reply>& reply) {
  return reply.ok() && reply.value().is_error() && reply.value().text.starts_with("NOSCRIPT");
}

}  // namespace balanced::redis
