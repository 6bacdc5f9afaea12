#include "http/wire.h"

#include <ostream>  // before Boost's string_view, which needs it

#include <boost/beast/http/status.hpp>
#include <charconv>

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

namespace {

void append_number(std::string& out, size_t value) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
  out.append(digits, end);
}

void append_header(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

}  // namespace

void encode_response_head(const Response& response, unsigned version, bool keep_alive,
                          std::string_view server, std::string& out) {
  const int status = response.status >= 100 && response.status <= 999 ? response.status : 500;
  out.append(version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  append_number(out, static_cast<size_t>(status));
  out.push_back(' ');
  const auto known = boost::beast::http::int_to_status(static_cast<unsigned>(status));
  if (known != boost::beast::http::status::unknown) {
    const auto reason = boost::beast::http::obsolete_reason(known);
    out.append(reason.data(), reason.size());
  }
  out.append("\r\n");
  if (is_valid_header_value(server)) append_header(out, "Server", server);
  if (!response.content_type.empty() && is_valid_header_value(response.content_type.view())) {
    append_header(out, "Content-Type", response.content_type.view());
  }
  for (const auto& [name, value] : response.headers) {
    if (is_framing_header(name) || !is_valid_header_name(name) || !is_valid_header_value(value)) {
      continue;
    }
    append_header(out, name, value);
  }
  out.append("Content-Length: ");
  append_number(out, response.body.size());
  out.append("\r\n");
  if (version == 10 && keep_alive) out.append("Connection: keep-alive\r\n");
  if (version != 10 && !keep_alive) out.append("Connection: close\r\n");
  out.append("\r\n");
}

}  // namespace balanced::http
