// The HTTP transport on its own: the response head as encoded for the wire, and a real
// http::Server (in this process, on a free port) fed requests the way clients really
// send them — in pieces, chunked, pipelined, HTTP/1.0, waiting for 100 Continue — with
// a handler that echoes.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <random>
#include <thread>

#include "http/client.h"
#include "http/server.h"
#include "http/wire.h"
#include "support/http_client.h"
#include "support/webhook_receiver.h"

namespace balanced::http {
namespace {

using balanced::testing::HttpClient;

std::string head_of(const Response& response, unsigned version, bool keep_alive) {
  std::string out;
  encode_response_head(response, version, keep_alive, "balanced", out);
  return out;
}

TEST(Wire, ResponseHeadHasStatusFramingAndTheHandlersHeaders) {
  Response response;
  response.status = 201;
  response.body = "{\"a\":1}";
  response.headers = {{"Location", "/accounts/a"}, {"X-Request-Id", "r1"}};
  EXPECT_EQ(head_of(response, 11, true),
            "HTTP/1.1 201 Created\r\nServer: balanced\r\nContent-Type: application/json\r\n"
            "Location: /accounts/a\r\nX-Request-Id: r1\r\nContent-Length: 7\r\n\r\n");
  EXPECT_EQ(head_of(response, 11, false).find("Connection: close\r\n") != std::string::npos, true);
  EXPECT_EQ(head_of(response, 10, true).substr(0, 9), "HTTP/1.0 ");
  EXPECT_NE(head_of(response, 10, true).find("Connection: keep-alive\r\n"), std::string::npos);
  EXPECT_EQ(head_of(response, 10, false).find("Connection:"), std::string::npos);
}

TEST(Wire, FramingAndInvalidHeadersFromAHandlerNeverReachTheWire) {
  Response response;
  response.status = 200;
  response.body = "xy";
  response.headers = {{"Content-Length", "999"},       {"transfer-encoding", "chunked"},
                      {"Connection", "upgrade"},        {"Bad Name", "v"},
                      {"X-Split", "a\r\nInjected: yes"}, {"X-Nul", std::string("a\0b", 3)},
                      {"", "empty name"},               {"X-Fine", "kept"}};
  const std::string head = head_of(response, 11, true);
  EXPECT_EQ(head,
            "HTTP/1.1 200 OK\r\nServer: balanced\r\nContent-Type: application/json\r\n"
            "X-Fine: kept\r\nContent-Length: 2\r\n\r\n");
  response.status = 42;  // not a status: sent as 500
  EXPECT_EQ(head_of(response, 11, true).substr(0, 35), "HTTP/1.1 500 Internal Server Error\r");
  response.status = 299;  // a status with no reason phrase
  EXPECT_EQ(head_of(response, 11, true).substr(0, 14), "HTTP/1.1 299 \r");
}

TEST(Wire, AStreamedHeadIsChunkedOnHttp11AndEndsWithTheConnectionOn10) {
  Response response;
  response.content_type = "text/event-stream";
  std::string out;
  encode_response_head(response, 11, false, "balanced", out, true);
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nServer: balanced\r\nContent-Type: text/event-stream\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
  out.clear();
  encode_response_head(response, 10, false, "balanced", out, true);
  EXPECT_EQ(out, "HTTP/1.0 200 OK\r\nServer: balanced\r\nContent-Type: text/event-stream\r\n\r\n");
}

// Answers every request with its method, path, one header and body. Under /late/ it
// answers from another thread, under /decorated/ through two decorations, and /twice
// answers twice (the second time late, from another thread).
constexpr size_t kBigBody = 8 << 20;

class Echo final : public Handler {
 public:
  ~Echo() override {
    for (auto& thread : threads_) thread.join();
  }
  void handle(Request&& request, Respond respond) override {
    Response response;
    response.content_type = "text/plain";
    response.body = request.method + " " + request.path + " [" +
                    std::string(request.header("X-Tag")) + "] " + request.body;
    if (request.path.starts_with("/decorated/")) {
      respond.decorate([](Response& r) { r.set_header("X-Order", std::string(r.header("X-Order")) + "first;"); });
      respond.decorate([tag = std::string(64, 't')](Response& r) {
        r.set_header("X-Order", std::string(r.header("X-Order")) + "last;");
        r.headers.emplace_back("X-Capture", tag);
      });
    }
    if (request.path.starts_with("/big/")) {  // more than a socket's send buffer takes at once
      response.body.clear();
      for (size_t i = 0; response.body.size() < kBigBody; ++i) response.body += std::to_string(i) + ",";
    }
    if (request.path.starts_with("/stream/")) {  // "one", then "two" from another thread, then the end
      response.body.clear();
      auto stream = respond.stream(std::move(response));
      stream->write("one", [this, stream] {
        threads_.emplace_back([stream] {
          stream->post([stream] { stream->write("two", [stream] { stream->end(); }); });
        });
      });
      return;
    }
    if (request.path == "/twice") {
      respond(std::move(response));
      threads_.emplace_back([respond] {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        Response second;
        second.body = "second answer";
        respond(std::move(second));
      });
      return;
    }
    if (request.path.starts_with("/late/") || request.path.starts_with("/decorated/late")) {
      threads_.emplace_back([respond, body = std::move(response.body)] {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        respond.later([body] {
          Response built;
          built.body = body;
          return built;
        });
      });
      return;
    }
    respond(std::move(response));
  }
  size_t body_bytes_max(std::string_view, std::string_view target) const override {
    return target == "/small" ? 16 : 0;
  }

 private:
  std::vector<std::thread> threads_;  // touched only on the server's one thread
};

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.port = 0;
    options.threads = 1;
    options.body_bytes_max = 1 << 20;
    server_ = std::make_unique<Server>(options, echo_);
    ASSERT_TRUE(server_->start().ok());
  }
  void TearDown() override { server_->shutdown(1000); }

  Echo echo_;
  std::unique_ptr<Server> server_;
};

TEST_F(HttpServerTest, AStreamedBodyGoesOutInPiecesAndEndsTheConnection) {
  HttpClient client(server_->port());
  ASSERT_TRUE(client.send_raw("GET /stream/a HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto all = client.read_until_closed();
  ASSERT_TRUE(all);
  EXPECT_NE(all->find("Transfer-Encoding: chunked\r\n"), std::string::npos) << *all;
  EXPECT_NE(all->find("\r\n\r\n3\r\none\r\n3\r\ntwo\r\n0\r\n\r\n"), std::string::npos) << *all;
  EXPECT_EQ(all->substr(all->size() - 5), "0\r\n\r\n");
  // HTTP/1.0: the body as written, ended by the close.
  HttpClient old(server_->port());
  ASSERT_TRUE(old.send_raw("GET /stream/b HTTP/1.0\r\n\r\n"));
  auto plain = old.read_until_closed();
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->substr(plain->find("\r\n\r\n") + 4), "onetwo");
  // HEAD: the head alone, and the connection closes.
  HttpClient head(server_->port());
  ASSERT_TRUE(head.send_raw("HEAD /stream/c HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto only = head.read_until_closed();
  ASSERT_TRUE(only);
  EXPECT_EQ(only->find("\r\n\r\n") + 4, only->size()) << *only;
}

TEST_F(HttpServerTest, ARequestSentOneByteAtATimeIsWhole) {
  HttpClient client(server_->port());
  ASSERT_TRUE(client.connect());
  const std::string request =
      "POST /a/b HTTP/1.1\r\nHost: x\r\nX-Tag: t\r\nContent-Length: 11\r\n\r\nhello world";
  for (const char c : request) {
    ASSERT_TRUE(client.send_raw(std::string(1, c)));
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "POST /a/b [t] hello world");
  EXPECT_EQ(response->header("content-type"), "text/plain");
  EXPECT_EQ(response->header("server"), "balanced");
}

TEST_F(HttpServerTest, AChunkedBodyIsJoinedAndItsLimitHolds) {
  HttpClient client(server_->port());
  ASSERT_TRUE(client.connect());
  ASSERT_TRUE(client.send_raw(
      "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\n\r\n"));
  auto joined = client.read_response();
  ASSERT_TRUE(joined);
  EXPECT_EQ(joined->body, "POST /c [] hello world");
  // Past the route's 16 bytes in chunks: 413, and the connection closes.
  ASSERT_TRUE(client.send_raw(
      "POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "a\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n"));
  auto refused = client.read_response();
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 413);
  EXPECT_EQ(refused->header("content-type"), "application/problem+json");
  EXPECT_TRUE(client.closed_by_server());
}

TEST_F(HttpServerTest, PipelinedRequestsWithBodiesAreAnsweredInOrder) {
  HttpClient client(server_->port());
  ASSERT_TRUE(client.connect());
  std::string pipeline;
  for (int i = 0; i < 50; ++i) {
    const std::string body = "body-" + std::to_string(i);
    pipeline += "POST /p/" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                std::to_string(body.size()) + "\r\n\r\n" + body;
  }
  ASSERT_TRUE(client.send_raw(pipeline));
  for (int i = 0; i < 50; ++i) {
    auto response = client.read_response();
    ASSERT_TRUE(response) << i;
    EXPECT_EQ(response->body, "POST /p/" + std::to_string(i) + " [] body-" + std::to_string(i));
  }
}

TEST_F(HttpServerTest, AnExpectContinueIsAnsweredBeforeTheBodyIsSent) {
  HttpClient client(server_->port(), 3000);
  ASSERT_TRUE(client.connect());
  ASSERT_TRUE(client.send_raw(
      "POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"));
  auto interim = client.read_response();  // the body is not sent: only the 100 can come
  ASSERT_TRUE(interim) << "no 100 Continue";
  EXPECT_EQ(interim->status, 100);
  // Sends `bytes`, then the next answer must be a 200 echoing `echo`.
  auto answered = [&client](const std::string& bytes, const std::string& echo) {
    ASSERT_TRUE(client.send_raw(bytes));
    auto answer = client.read_response();
    ASSERT_TRUE(answer);
    EXPECT_EQ(answer->status, 200);
    EXPECT_EQ(answer->body, echo);
  };
  answered("hello", "POST /e [] hello");
  // A body sent with the head anyway: answered once, with no 100 in front.
  answered("POST /f HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
           "POST /f [] hi");
  // Over the route's limit: the final 413 at once, before any body.
  ASSERT_TRUE(client.send_raw(
      "POST /small HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 17\r\n\r\n"));
  auto refused = client.read_response();
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 413);
  EXPECT_TRUE(client.closed_by_server());
}

// Random pipelines — bodies by length or in chunks of random sizes, extra headers — sent
// in random fragments: every answer comes back whole and in order. Seeded, so a failure
// repeats.
TEST_F(HttpServerTest, RandomPipelinesInRandomFragmentsAreAnsweredInOrder) {
  std::mt19937 random(20261205);
  auto below = [&](size_t n) { return static_cast<size_t>(random() % n); };
  for (int round = 0; round < 200; ++round) {
    std::string wire;
    std::vector<std::string> expected;
    const size_t requests = 1 + below(8);
    for (size_t r = 0; r < requests; ++r) {
      const std::string path = "/r" + std::to_string(round) + "/" + std::to_string(r);
      const std::string tag = "t" + std::to_string(below(1000));
      std::string body(below(3) == 0 ? 0 : below(3000), 'a');
      for (char& c : body) c = static_cast<char>('a' + below(26));
      const bool chunked = !body.empty() && below(2) == 0;
      std::string head = std::string(body.empty() ? "GET " : "POST ") + path + " HTTP/1.1\r\nHost: x\r\n";
      for (size_t h = below(4); h > 0; --h) head += "X-Extra-" + std::to_string(h) + ": v\r\n";
      head += "X-Tag: " + tag + "\r\n";
      std::string encoded;
      if (chunked) {
        head += "Transfer-Encoding: chunked\r\n\r\n";
        for (size_t at = 0; at < body.size();) {
          const size_t size = std::min(body.size() - at, 1 + below(700));
          char hex[16];
          std::snprintf(hex, sizeof hex, "%zx", size);
          encoded += std::string(hex) + "\r\n" + body.substr(at, size) + "\r\n";
          at += size;
        }
        encoded += "0\r\n\r\n";
      } else {
        if (!body.empty()) head += "Content-Length: " + std::to_string(body.size()) + "\r\n";
        head += "\r\n";
        encoded = body;
      }
      wire += head + encoded;
      expected.push_back(std::string(body.empty() ? "GET " : "POST ") + path + " [" + tag + "] " + body);
    }
    HttpClient client(server_->port());
    ASSERT_TRUE(client.connect());
    for (size_t at = 0; at < wire.size();) {
      const size_t size = std::min(wire.size() - at, 1 + below(below(2) == 0 ? 16 : 4096));
      ASSERT_TRUE(client.send_raw(wire.substr(at, size)));
      at += size;
      if (below(4) == 0) std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    for (size_t r = 0; r < expected.size(); ++r) {
      auto response = client.read_response();
      ASSERT_TRUE(response) << "round " << round << ", answer " << r;
      ASSERT_EQ(response->status, 200) << "round " << round << ", answer " << r;
      ASSERT_EQ(response->body, expected[r]) << "round " << round << ", answer " << r;
    }
  }
}

TEST_F(HttpServerTest, DecorationsRunOnEveryAnswerTheLastAddedFirst) {
  HttpClient client(server_->port());
  ASSERT_TRUE(client.connect());
  for (const std::string path : {"/decorated/now", "/decorated/late"}) {
    ASSERT_TRUE(client.send_raw("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto response = client.read_response();
    ASSERT_TRUE(response) << path;
    EXPECT_EQ(response->body, "GET " + path + " [] ") << path;
    EXPECT_EQ(response->header("x-order"), "last;first;") << path;
    EXPECT_EQ(response->header("x-capture"), std::string(64, 't')) << path;
  }
  // The next request on the connection carries none of them.
  ASSERT_TRUE(client.send_raw("GET /plain HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto plain = client.read_response();
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->header("x-order"), "");
}

TEST_F(HttpServerTest, AnAnswerFromAnotherThreadGoesToItsOwnRequestOnly) {
  HttpClient client(server_->port());
  ASSERT_TRUE(client.connect());
  // Pipelined: /twice answers at once, and again 50 ms later, while /late/next (answered
  // after 100 ms) is being handled on the same connection: that late second answer must
  // not become /late/next's.
  ASSERT_TRUE(client.send_raw("GET /twice HTTP/1.1\r\nHost: x\r\n\r\n"
                              "GET /late/next HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto first = client.read_response();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->body, "GET /twice [] ");
  auto second = client.read_response();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->body, "GET /late/next [] ");
  ASSERT_TRUE(client.send_raw("GET /after HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto after = client.read_response();
  ASSERT_TRUE(after);
  EXPECT_EQ(after->body, "GET /after [] ");
}

// Answers are written at once when the socket takes them, asynchronously when it does
// not (a client that does not read yet): either way whole and in order, and a long
// pipeline of small ones is answered whole too.
TEST_F(HttpServerTest, AnswersLargerThanTheSendBufferAndLongPipelinesArriveWholeInOrder) {
  HttpClient client(server_->port(), 10000);
  ASSERT_TRUE(client.connect());
  ASSERT_TRUE(client.send_raw("GET /big/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                              "GET /big/2 HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the send buffer fills meanwhile
  const auto first = client.read_response();
  const auto second = client.read_response();
  const auto third = client.read_response();
  ASSERT_TRUE(first && second && third);
  EXPECT_GE(first->body.size(), kBigBody);
  EXPECT_TRUE(first->body.starts_with("0,1,2,3,"));
  EXPECT_EQ(first->body, third->body);
  EXPECT_EQ(second->body, "GET /a [] ");
  std::string pipeline;
  for (int i = 0; i < 200; ++i) pipeline += "GET /p" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_TRUE(client.send_raw(pipeline));
  for (int i = 0; i < 200; ++i) {
    const auto answer = client.read_response();
    ASSERT_TRUE(answer) << i;
    EXPECT_EQ(answer->body, "GET /p" + std::to_string(i) + " [] ");
  }
}

TEST_F(HttpServerTest, HttpOneZeroClosesUnlessAskedToKeepAlive) {
  HttpClient kept(server_->port());
  ASSERT_TRUE(kept.connect());
  ASSERT_TRUE(kept.send_raw("GET /k HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  auto first = kept.read_response();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->header("connection"), "keep-alive");
  ASSERT_TRUE(kept.send_raw("GET /k2 HTTP/1.0\r\n\r\n"));
  auto second = kept.read_response();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->body, "GET /k2 [] ");
  EXPECT_TRUE(kept.closed_by_server());
}

TEST_F(HttpServerTest, MalformedOrOversizedHeadsAreRefusedAndTheServerGoesOn) {
  const std::vector<std::pair<std::string, int>> cases = {
      {"GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n", 431},
      {"POST /small HTTP/1.1\r\nContent-Length: 17\r\n\r\n", 413},
  };
  for (const auto& [bytes, status] : cases) {
    HttpClient client(server_->port(), 5000);
    ASSERT_TRUE(client.connect());
    ASSERT_TRUE(client.send_raw(bytes));
    auto response = client.read_response();
    ASSERT_TRUE(response) << bytes.substr(0, 40);
    EXPECT_EQ(response->status, status) << bytes.substr(0, 40);
    EXPECT_TRUE(client.closed_by_server());
  }
  // A chunk size line that never ends (a parser without a bound would wait for its end
  // forever, the buffer growing): refused once it passes the chunk line's bound.
  {
    HttpClient endless(server_->port(), 3000);
    ASSERT_TRUE(endless.connect());
    ASSERT_TRUE(endless.send_raw("POST /e HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;"));
    const std::string filler(4096, 'a');
    for (int i = 0; i < 40 && endless.send_raw(filler); ++i) {
    }
    auto refused = endless.read_response();
    if (refused) EXPECT_EQ(refused->status, 400);
    EXPECT_TRUE(refused || endless.closed_by_server()) << "the endless chunk line is still being read";
  }
  HttpClient fresh(server_->port());
  auto ok = fresh.request("GET", "/after");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

}  // namespace
}  // namespace balanced::http

namespace balanced::http {
namespace {

ClientTarget local_target(uint16_t port) {
  auto target = parse_client_target("http://127.0.0.1:" + std::to_string(port) + "/hook", "test");
  EXPECT_TRUE(target.ok());
  return target.value();
}

ClientRequest post(std::string body) {
  return ClientRequest{.method = "POST", .headers = {{"Content-Type", "application/json"}}, .body = std::move(body)};
}

// Webhooks and the risk hook reuse one connection while the receiver keeps it.
TEST(KeptConnection, CallsShareOneConnectionWhileTheServerKeepsIt) {
  testing::WebhookReceiver receiver([](size_t n, const testing::ReceivedHook&) {
    return testing::HookAnswer{.status = 200, .body = R"({"n":)" + std::to_string(n) + "}", .keep_open = true};
  });
  KeptConnection connection(local_target(receiver.port()));
  for (int i = 0; i < 5; ++i) {
    auto reply = connection.call(post("{\"i\":" + std::to_string(i) + "}"), 2000, 1024);
    ASSERT_TRUE(reply.ok()) << reply.error().detail;
    EXPECT_EQ(reply.value().status, 200);
    EXPECT_EQ(reply.value().body, R"({"n":)" + std::to_string(i) + "}");
  }
  EXPECT_EQ(connection.connections_opened(), 1);
  EXPECT_EQ(receiver.connections(), 1);
  const auto received = receiver.received();
  ASSERT_EQ(received.size(), 5u);
  EXPECT_EQ(received[4].body, R"({"i":4})");
  EXPECT_EQ(received[4].headers.count("connection"), 0u);  // HTTP/1.1: kept unless said
}

// A server that says close, or closes a kept connection while idle without saying so:
// the next call opens a new one, and a request sent into the closed one is sent once more.
TEST(KeptConnection, AClosedConnectionIsMadeAgainAndAStaleOneRetriedOnce) {
  testing::WebhookReceiver receiver([](size_t n, const testing::ReceivedHook&) {
    switch (n) {
      case 0:
        return testing::HookAnswer{.status = 200};  // Connection: close
      case 1:
        return testing::HookAnswer{.status = 201, .keep_open = true, .drop_after = true};
      default:
        return testing::HookAnswer{.status = 202, .keep_open = true};
    }
  });
  KeptConnection connection(local_target(receiver.port()));
  EXPECT_EQ(connection.call(post("a"), 2000, 1024).value().status, 200);
  EXPECT_EQ(connection.call(post("b"), 2000, 1024).value().status, 201);  // on a second connection
  std::this_thread::sleep_for(std::chrono::milliseconds(100));             // the receiver closes it
  auto third = connection.call(post("c"), 2000, 1024);
  ASSERT_TRUE(third.ok()) << third.error().detail;
  EXPECT_EQ(third.value().status, 202);
  EXPECT_EQ(connection.connections_opened(), 3);
  EXPECT_EQ(receiver.connections(), 3);
  const auto received = receiver.received();
  ASSERT_EQ(received.size(), 3u);  // "c" arrived once: the stale connection never read it
  EXPECT_EQ(received[2].body, "c");
}

// A late answer fails the call within its deadline; the connection is made again for the
// next. A status-only call keeps the status when the body is past the bound.
TEST(KeptConnection, ALateAnswerFailsInTimeAndTheNextCallWorks) {
  testing::WebhookReceiver receiver([](size_t n, const testing::ReceivedHook&) {
    if (n == 0) return testing::HookAnswer{.status = 200, .delay_ms = 400, .keep_open = true};
    return testing::HookAnswer{.status = 200, .body = std::string(5000, 'x'), .keep_open = true};
  });
  KeptConnection connection(local_target(receiver.port()));
  const auto started = std::chrono::steady_clock::now();
  auto late = connection.call(post("slow"), 100, 1024);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(350));
  ASSERT_FALSE(late.ok());
  EXPECT_NE(late.error().detail.find("no answer within 100 ms"), std::string::npos) << late.error().detail;
  std::this_thread::sleep_for(std::chrono::milliseconds(400));  // the receiver answers into the closed one
  ClientRequest status_only = post("quick");
  status_only.status_only = true;
  auto reply = connection.call(status_only, 2000, 1024);
  ASSERT_TRUE(reply.ok()) << reply.error().detail;
  EXPECT_EQ(reply.value().status, 200);
  EXPECT_TRUE(reply.value().body.empty());
  auto whole = connection.call(post("whole"), 2000, 1024);  // without status_only, the bound fails it
  EXPECT_FALSE(whole.ok());
  EXPECT_EQ(connection.connections_opened(), 3);
}

// A connection idle past its bound is not reused (a load balancer may have dropped it
// silently): the next call opens a new one rather than wait out its deadline.
TEST(KeptConnection, AConnectionIdleTooLongIsNotReused) {
  testing::WebhookReceiver receiver([](size_t, const testing::ReceivedHook&) {
    return testing::HookAnswer{.status = 200, .keep_open = true};
  });
  KeptConnection connection(local_target(receiver.port()), 50);
  ASSERT_EQ(connection.call(post("a"), 2000, 1024).value().status, 200);
  ASSERT_EQ(connection.call(post("b"), 2000, 1024).value().status, 200);
  EXPECT_EQ(connection.connections_opened(), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  ASSERT_EQ(connection.call(post("c"), 2000, 1024).value().status, 200);
  EXPECT_EQ(connection.connections_opened(), 2);
  EXPECT_EQ(receiver.received().size(), 3u);
}

// Callers on many threads: each call takes an idle connection or opens one; afterwards
// one caller at a time reuses a kept one.
TEST(ClientPool, ConcurrentCallersEachGetAConnectionAndReuseThemAfterward) {
  testing::WebhookReceiver receiver([](size_t n, const testing::ReceivedHook&) {
    return testing::HookAnswer{.status = 200, .keep_open = n >= 20};  // the first 20 closed
  });
  ClientPool pool(local_target(receiver.port()));
  std::atomic<int> answered{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        auto reply = pool.call(post("x"), 5000, 1024);
        if (reply.ok() && reply.value().status == 200) ++answered;
      }
    });
  }
  for (auto& caller : callers) caller.join();
  EXPECT_EQ(answered.load(), 20);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(pool.call(post("y"), 2000, 1024).value().status, 200);
  EXPECT_EQ(receiver.connections(), 21);  // 20 closed by the receiver, then one kept
  EXPECT_EQ(receiver.received().size(), 25u);
}

}  // namespace
}  // namespace balanced::http
