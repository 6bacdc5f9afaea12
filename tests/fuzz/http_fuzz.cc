// libFuzzer target: the HTTP server's reading of a connection (src/http/server.cc feeding
// request_parser.h, the body and chunk-line bounds, 100-continue, pipelining).
// A real http::Server runs in this process on a loopback port with a handler that
// echoes; each input is sent on a fresh connection, in fragments whose sizes the input's
// first byte picks, then the client stops writing. The server must answer or close
// within the bound below (a hang is a crash here), and must still answer a plain request
// afterwards. Anything it answers must be a well-formed HTTP/1.1 status line.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http/server.h"
#include "support/http_client.h"

namespace {

using namespace balanced;

using testing::HttpClient;

// How long one input may keep the server from answering or closing.
constexpr int kAnswerWaitMs = 5000;

class Echo final : public http::Handler {
 public:
  void handle(http::Request&& request, http::Respond respond) override {
    http::Response response;
    response.content_type = "text/plain";
    response.body = request.method + " " + request.path + " " + request.body;
    respond(std::move(response));
  }
  size_t body_bytes_max(std::string_view, std::string_view target) const override {
    return target.starts_with("/small") ? 16 : 0;
  }
};

struct Fixture {
  Echo echo;
  http::Server server{[] {
                        http::ServerOptions options;
                        options.port = 0;
                        options.threads = 1;
                        options.header_bytes_max = 4096;
                        options.body_bytes_max = 64 * 1024;
                        return options;
                      }(),
                      echo};
  Fixture() {
    if (!server.start().ok()) {
      std::fprintf(stderr, "http_fuzz: the server did not start\n");
      std::abort();
    }
  }
};

// Every answer starts with a status line the server may send.
void check_answers(std::string_view received) {
  if (received.empty()) return;
  if (!received.starts_with("HTTP/1.1 ") && !received.starts_with("HTTP/1.0 ")) {
    std::fprintf(stderr, "http_fuzz: not a status line: %.40s\n", std::string(received).c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture fixture;
  if (size == 0) return 0;
  // The first byte picks the fragment size (1 to 256 bytes); the rest is the connection.
  const size_t fragment = 1 + data[0];
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);

  HttpClient client(fixture.server.port(), kAnswerWaitMs);
  if (!client.connect()) std::abort();
  for (size_t at = 0; at < input.size(); at += fragment) {
    if (!client.send_raw(std::string(input.substr(at, fragment)))) break;  // closed on us
  }
  client.finish_sending();
  const auto received = client.read_until_closed();
  if (!received) {
    std::fprintf(stderr, "http_fuzz: the server neither answered nor closed\n");
    std::abort();
  }
  check_answers(*received);

  // The server is still there for the next client.
  HttpClient probe(fixture.server.port(), kAnswerWaitMs);
  const auto answer = probe.request("GET", "/alive");
  if (!answer || answer->status != 200 || answer->body != "GET /alive ") {
    std::fprintf(stderr, "http_fuzz: the server no longer answers\n");
    std::abort();
  }
  return 0;
}
