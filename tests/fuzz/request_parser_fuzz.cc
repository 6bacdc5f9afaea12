// libFuzzer target: the HTTP request parser alone (src/http/request_parser.h), with no
// sockets, so it runs millions of inputs where http_fuzz runs thousands. Each input is
// read twice: whole, and in pieces whose size its first byte picks. Both readings must
// agree on every request (method, target, version, headers, body, keep-alive) and on how
// they stop, and neither may keep more untaken than a head or a chunk line and a piece.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "http/request_parser.h"

namespace {

using namespace balanced::http;

constexpr size_t kHeadBytesMax = 512;
constexpr size_t kBodyBytesMax = 256;

struct Reading {
  std::vector<std::string> requests;  // each request, flattened
  ParseError error = ParseError::none;
  size_t left = 0;
};

std::string flatten(const Request& request, bool keep_alive) {
  std::string out = request.method + ' ' + request.target + ' ' + std::to_string(request.version) +
                    (keep_alive ? " keep\n" : " close\n");
  for (const auto& [name, value] : request.headers) out += name + ':' + value + '\n';
  return out + '\n' + request.body;
}

Reading read_all(std::string_view input, size_t piece) {
  Reading reading;
  RequestParser parser(kHeadBytesMax);
  Request request;
  parser.start(request);
  std::string buffer;
  size_t fed = 0;
  for (;;) {
    const auto [step, used] = parser.put(buffer);
    if (used > buffer.size()) std::abort();
    buffer.erase(0, used);
    if (buffer.size() > kHeadBytesMax + RequestParser::kChunkLineBytesMax + piece) {
      std::fprintf(stderr, "request_parser_fuzz: %zu bytes kept untaken\n", buffer.size());
      std::abort();
    }
    if (step == RequestParser::Step::failed) {
      reading.error = parser.error();
      if (reading.error == ParseError::none || parser.why().empty()) std::abort();
      return reading;
    }
    if (step == RequestParser::Step::head) {
      // Every other request gets a smaller bound, as routes do.
      if (!parser.begin_body(reading.requests.size() % 2 == 0 ? kBodyBytesMax : 16)) {
        reading.error = parser.error();
        return reading;
      }
      continue;
    }
    if (step == RequestParser::Step::done) {
      reading.requests.push_back(flatten(request, parser.keep_alive()));
      request = balanced::http::Request{};
      parser.start(request);
      continue;
    }
    if (fed == input.size()) break;
    const size_t take = std::min(piece, input.size() - fed);
    buffer.append(input.substr(fed, take));
    fed += take;
  }
  reading.left = buffer.size();
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
  return 0;
}
