// libFuzzer target: the HTTP request parser alone (src/http/request_parser.h), with no
// sockets, so it runs millions of inputs where http_fuzz runs thousands. Each input is
// read twice: whole, and in pieces whose size its first byte picks. Both readings must
// agree on every request (method, target, version, headers, body, keep-alive) and on how
// they stop, and neither may keep more untaken than a head or a chunk line and a piece.
// And a second opinion: when Beast's parser (which the server used before) also reads the
// first request, it must read it the same way (ours refuses more, never reads otherwise).
#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/beast/http/string_body.hpp>
#include <optional>

#include "http/request_parser.h"
#include "support/request_reading.h"

namespace {

using namespace balanced::http;

constexpr size_t kHeadBytesMax = 512;
constexpr size_t kBodyBytesMax = 256;

struct Reading {
  std::vector<std::string> requests;  // each request, flattened
  std::string first_grouped;          // the first, its headers grouped as Beast's are
  ParseError error = ParseError::none;
  size_t left = 0;
};

// A request as one string. Headers in the order received, or with `grouped`, those of one
// name together where the first of them came (Beast keeps its fields so).
std::string flatten(const Request& request, bool keep_alive, bool grouped = false) {
  std::string out = request.method + ' ' + request.target + ' ' + std::to_string(request.version) +
                    (keep_alive ? " keep\n" : " close\n");
  std::vector<std::pair<std::string, std::string>> headers = request.headers;
  if (grouped) {
    const auto lower = [](std::string text) {
      for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return text;
    };
    std::vector<std::string> first_seen;
    for (const auto& header : headers) {
      if (std::find(first_seen.begin(), first_seen.end(), lower(header.first)) == first_seen.end()) {
        first_seen.push_back(lower(header.first));
      }
    }
    std::stable_sort(headers.begin(), headers.end(), [&](const auto& a, const auto& b) {
      return std::find(first_seen.begin(), first_seen.end(), lower(a.first)) <
             std::find(first_seen.begin(), first_seen.end(), lower(b.first));
    });
  }
  for (const auto& [name, value] : headers) out += name + ':' + value + '\n';
  return out + '\n' + request.body;
}

// `text` with bytes outside printable ASCII as \xNN, for the report.
std::string printable(std::string_view text) {
  std::string out;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if ((byte >= 0x20 && byte < 0x7f) || c == '\n') {
      out += c;
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", byte);
      out += hex;
    }
  }
  return out;
}

// Whether the connection persists after `message`, by RFC 9112 section 9.3 over every
// Connection field, their options as Beast's token_list reads them. Not Beast's own
// answers: the message's keep_alive() reads only the first Connection field, and the
// parser's lets "keep-alive" beside "close" keep an HTTP/1.0 connection open.
bool keep_alive(const boost::beast::http::request<boost::beast::http::string_body>& message) {
  namespace bhttp = boost::beast::http;
  bool close = false;
  bool keep = false;
  for (const auto& field : message) {
    if (field.name() != bhttp::field::connection) continue;
    bhttp::token_list options{field.value()};  // exists() is not const
    close = close || options.exists("close");
    keep = keep || options.exists("keep-alive");
  }
  if (close) return false;
  return message.version() >= 11 || keep;
}

// Beast's reading of the first request of `input`, flattened as ours; nothing if Beast
// refuses it or has not seen all of it.
std::optional<std::string> beast_first(std::string_view input) {
  namespace bhttp = boost::beast::http;
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(kHeadBytesMax);
  parser.body_limit(kBodyBytesMax);
  Request request;
  size_t at = 0;
  while (!parser.is_done() && at < input.size()) {
    boost::system::error_code ec;
    const size_t used = parser.put(boost::asio::buffer(input.data() + at, input.size() - at), ec);
    if (ec) return std::nullopt;  // refused, or wants more than there is
    at += used;
    if (parser.is_header_done() && request.method.empty()) {
      // The head's fields now: Beast adds a chunked body's trailer fields to them later,
      // which ours reads and drops.
      const auto& message = parser.get();
      request.method = std::string(message.method_string());
      request.target = std::string(message.target());
      request.version = message.version();
      for (const auto& field : message) request.headers.emplace_back(field.name_string(), field.value());
      parser.eager(true);
    } else if (used == 0) {
      break;
    }
  }
  if (!parser.is_done() || request.method.empty()) return std::nullopt;
  request.body = parser.get().body();
  return flatten(request, keep_alive(parser.get()), true);
}

Reading read_all(std::string_view input, size_t piece) {
  // Every other request gets a smaller bound, as routes do.
  const auto read = balanced::testing::read_requests(input, piece, kHeadBytesMax,
                                                     [](size_t i) { return i % 2 == 0 ? kBodyBytesMax : 16; });
  if (read.held_most > kHeadBytesMax + RequestParser::kChunkLineBytesMax + piece) {
    std::fprintf(stderr, "request_parser_fuzz: %zu bytes kept untaken\n", read.held_most);
    std::abort();
  }
  if (read.error != ParseError::none && read.why.empty()) std::abort();
  Reading reading;
  reading.error = read.error;
  reading.left = read.left;
  for (size_t i = 0; i < read.requests.size(); ++i) {
    if (i == 0) reading.first_grouped = flatten(read.requests[i], read.keep_alive[i], true);
    reading.requests.push_back(flatten(read.requests[i], read.keep_alive[i]));
  }
  return reading;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t piece = 1 + data[0] % 32;
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  const Reading whole = read_all(input, input.size() + 1);
  const Reading pieces = read_all(input, piece);
  if (whole.requests != pieces.requests || whole.error != pieces.error) {
    std::fprintf(stderr, "request_parser_fuzz: pieces of %zu read differently (%zu/%zu requests)\n", piece,
                 whole.requests.size(), pieces.requests.size());
    std::abort();
  }
  if (!whole.requests.empty()) {
    if (const auto beast = beast_first(input); beast && *beast != whole.first_grouped) {
      std::fprintf(stderr, "request_parser_fuzz: Beast reads the first request otherwise:\n--- ours\n%s\n--- Beast\n%s\n",
                   printable(whole.first_grouped).c_str(), printable(*beast).c_str());
      std::abort();
    }
  }
  return 0;
}
