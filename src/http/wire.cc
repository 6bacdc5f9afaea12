#include "http/wire.h"

#include <ostream>  // before Boost's string_view, which needs it

#include <boost/beast/http/status.hpp>
#include <charconv>

#include "core/text_writer.h"

namespace balanced::http {

bool is_framing_header(std::string_view name) {
  return iequals(name, "Content-Length") || iequals(name, "Transfer-Encoding") ||
         iequals(name, "Connection") || iequals(name, "Keep-Alive");
}

bool is_valid_header_name(std::string_view name) {
  if (name.empty()) return false;
  for (const char c : name) {
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum && std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

bool is_valid_header_value(std::string_view value) {
  return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

void encode_response_head(const Response& response, unsigned version, bool keep_alive,
                          std::string_view server, std::string& out, bool streamed) {
  static constexpr std::string_view kLength = "Content-Length: ";
  static constexpr size_t kLineMax = 128;  // a status line; Content-Length and Connection
  const int status = response.status >= 100 && response.status <= 999 ? response.status : 500;
  const auto known = boost::beast::http::int_to_status(static_cast<unsigned>(status));
  const auto reason = known != boost::beast::http::status::unknown
                          ? boost::beast::http::obsolete_reason(known)
                          : boost::core::string_view();
  const bool server_ok = is_valid_header_value(server);
  // A literal content type is one of ours; any other (a proxied answer's) is checked.
  const std::string_view type = response.content_type.view();
  const bool type_ok = !type.empty() && (response.content_type.is_literal() || is_valid_header_value(type));
  size_t room = 3 * kLineMax + reason.size() + server.size() + type.size() + 2 * 16;
  for (const auto& [name, value] : response.headers) room += name.size() + value.size() + 4;
  core::TextWriter head(out, room);
  head.raw(version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  head.advance(std::to_chars(head.cursor(), head.cursor() + 3, status).ptr);
  head.raw(' ');
  head.raw(std::string_view(reason.data(), reason.size()));
  head.raw("\r\n");
  const auto header = [&head](std::string_view name, std::string_view value) {
    head.raw(name);
    head.raw(": ");
    head.raw(value);
    head.raw("\r\n");
  };
  if (server_ok) header("Server", server);
  if (type_ok) header("Content-Type", type);
  for (const auto& [name, value] : response.headers) {
    if (is_framing_header(name) || !is_valid_header_name(name) || !is_valid_header_value(value)) {
      continue;
    }
    header(name, value);
  }
  if (!streamed) {
    head.raw(kLength);
    head.advance(std::to_chars(head.cursor(), head.cursor() + 20, response.body.size()).ptr);
    head.raw("\r\n");
  } else if (version != 10) {
    head.raw("Transfer-Encoding: chunked\r\n");
  }
  if (version == 10 && keep_alive) head.raw("Connection: keep-alive\r\n");
  if (version != 10 && !keep_alive) head.raw("Connection: close\r\n");
  head.raw("\r\n");
  head.finish();
}

}  // namespace balanced::http
