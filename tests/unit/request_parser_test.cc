// The HTTP request parser alone (src/http/request_parser.h): what it reads, in whatever
// pieces the bytes come, and what it refuses. The server's use of it (deadlines,
// 100 Continue, answers) is in http_server_test.cc.
#include "http/request_parser.h"
#include "support/request_reading.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace balanced::http {
namespace {

using Step = RequestParser::Step;

constexpr size_t kHeadMax = 1024;
constexpr size_t kBodyMax = 64;

using Reading = testing::RequestReading;

// Reads `input` as a connection would, in pieces of `piece` bytes, every request given
// the same body bound.
Reading read_all(std::string_view input, size_t piece, size_t body_max = kBodyMax) {
  return testing::read_requests(input, piece, kHeadMax, [body_max](size_t) { return body_max; });
}

TEST(RequestParser, ReadsTheRequestLineHeadersAndBody) {
  const auto reading = read_all(
      "POST /accounts/transactions?x=1 HTTP/1.1\r\nHost: h\r\nContent-Type:  application/json \r\n"
      "Content-Length: 5\r\nX-Empty:\r\n\r\nhello",
      4096);
  ASSERT_EQ(reading.error, ParseError::none) << reading.why;
  ASSERT_EQ(reading.requests.size(), 1u);
  const Request& request = reading.requests[0];
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.target, "/accounts/transactions?x=1");
  EXPECT_EQ(request.version, 11u);
  const Headers expected = {{"Host", "h"}, {"Content-Type", "application/json"},
                            {"Content-Length", "5"}, {"X-Empty", ""}};
  EXPECT_EQ(request.headers, expected);
  EXPECT_EQ(request.body, "hello");
  EXPECT_TRUE(reading.keep_alive[0]);
  EXPECT_EQ(reading.left, 0u);
}

// The same connection bytes give the same requests whatever the pieces they come in.
TEST(RequestParser, EveryPieceSizeReadsTheSamePipeline) {
  const std::string pipeline =
      "\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3;name=value\r\nabc\r\n0A\r\n0123456789\r\n0\r\nTrailer-Field: t\r\n\r\n"
      "POST /c HTTP/1.0\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nhi"
      "GET /d HTTP/1.1\r\nConnection: x, close\r\n\r\n"
      "GET /unfinished HTTP/1.1\r\nHo";
  for (size_t piece = 1; piece <= pipeline.size(); ++piece) {
    const auto reading = read_all(pipeline, piece);
    ASSERT_EQ(reading.error, ParseError::none) << piece << ": " << reading.why;
    ASSERT_EQ(reading.requests.size(), 4u) << piece;
    EXPECT_EQ(reading.requests[0].target, "/a");
    EXPECT_EQ(reading.requests[1].body, "abc0123456789");
    EXPECT_EQ(reading.requests[1].headers.size(), 1u) << "trailer fields are not headers";
    EXPECT_EQ(reading.requests[2].body, "hi");
    EXPECT_EQ(reading.requests[2].version, 10u);
    EXPECT_EQ(reading.keep_alive, (std::vector<bool>{true, true, true, false}));
    EXPECT_EQ(reading.left, std::string_view("GET /unfinished HTTP/1.1\r\nHo").size() -
                                std::string_view("GET /unfinished HTTP/1.1\r\n").size())
        << "a whole line is taken, a partial one is kept";
  }
}

TEST(RequestParser, HttpOneZeroKeepsAliveOnlyWhenAsked) {
  EXPECT_EQ(read_all("GET / HTTP/1.0\r\n\r\n", 100).keep_alive, std::vector<bool>{false});
  EXPECT_EQ(read_all("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 100).keep_alive,
            std::vector<bool>{true});
  EXPECT_EQ(read_all("GET / HTTP/1.1\r\nConnection: CLOSE\r\n\r\n", 100).keep_alive,
            std::vector<bool>{false});
}

// Every Connection field counts, as one list (RFC 9110 5.3), and "close" wins over
// "keep-alive" whatever the version (RFC 9112 9.3).
TEST(RequestParser, EveryConnectionFieldCountsAndCloseWins) {
  EXPECT_EQ(read_all("GET / HTTP/1.0\r\nConnection: keep-.0\r\nConnection: x, keep-alive\r\n\r\n", 100)
                .keep_alive,
            std::vector<bool>{true});
  EXPECT_EQ(read_all("GET / HTTP/1.1\r\nConnection: upgrade\r\nConnection: close\r\n\r\n", 100).keep_alive,
            std::vector<bool>{false});
  EXPECT_EQ(read_all("GET / HTTP/1.0\r\nConnection: keep-alive,close\r\n\r\n", 100).keep_alive,
            std::vector<bool>{false});
}

TEST(RequestParser, AnExpectContinueIsReported) {
  RequestParser parser(kHeadMax);
  Request request;
  parser.start(request);
  const auto put = parser.put("PUT /x HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n");
  ASSERT_EQ(put.step, Step::head);
  EXPECT_TRUE(parser.expects_continue());
  ASSERT_TRUE(parser.begin_body(kBodyMax));
  EXPECT_FALSE(parser.body_done());
  EXPECT_EQ(parser.put("abc").step, Step::done);
  EXPECT_EQ(request.body, "abc");
}

// Every input here is refused, whatever the pieces, and with the error that says its answer.
TEST(RequestParser, RefusesWhatTwoReadersCouldReadDifferently) {
  const std::vector<std::pair<std::string, ParseError>> cases = {
      {"GET / HTTP/1.1\nHost: x\r\n\r\n", ParseError::malformed},               // bare LF
      {"GET / HTTP/1.1\r\nHost: x\n\r\n", ParseError::malformed},
      {"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", ParseError::malformed},          // bare CR
      {"GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", ParseError::malformed},     // obs-fold
      {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", ParseError::malformed},            // space before colon
      {"GET / HTTP/1.1\r\nBad Header\r\n\r\n", ParseError::malformed},
      {"GET / HTTP/1.1\r\n: empty name\r\n\r\n", ParseError::malformed},
      {"GET / HTTP/1.1\r\nX: a\x01\r\n\r\n", ParseError::malformed},            // control in value
      {"GET / HTTP/1.1\r\nX: 0123456789abc\x0b" "0123456789abc\r\n\r\n", ParseError::malformed},
      {"GET / HTTP/1.1\r\nX: 0123456789abcdef\x7f\r\n\r\n", ParseError::malformed},
      {"GET /0123456789abc\x7f" "0123456789abc HTTP/1.1\r\n\r\n", ParseError::malformed},
      {"GET /0123456789abc\t0123456789abc HTTP/1.1\r\n\r\n", ParseError::malformed},
      {"GET  / HTTP/1.1\r\n\r\n", ParseError::malformed},                        // two spaces
      {"GET /a b HTTP/1.1\r\n\r\n", ParseError::malformed},
      {"GET /\x7f HTTP/1.1\r\n\r\n", ParseError::malformed},
      {"GET / HTTP/2.0\r\n\r\n", ParseError::malformed},
      {"GET / http/1.1\r\n\r\n", ParseError::malformed},
      {"GET /\r\n\r\n", ParseError::malformed},                                  // HTTP/0.9
      {"G(T / HTTP/1.1\r\n\r\n", ParseError::malformed},
      {"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", ParseError::malformed},
      {"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\nx", ParseError::malformed},
      {"POST / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\nx", ParseError::malformed},
      {"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", ParseError::malformed},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", ParseError::malformed},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
       ParseError::malformed},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", ParseError::malformed},
      {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", ParseError::malformed},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n", ParseError::malformed},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1 x\r\n", ParseError::malformed},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", ParseError::malformed},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n", ParseError::malformed},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;" + std::string(5000, 'e') + "\r\n",
       ParseError::malformed},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;" + std::string(5000, 'e'), ParseError::malformed},
      {"GET / HTTP/1.1\r\nX: " + std::string(kHeadMax, 'a') + "\r\n\r\n", ParseError::head_too_large},
      {"GET / HTTP/1.1\r\nX: " + std::string(kHeadMax, 'a'), ParseError::head_too_large},
      {"\r\r\nGET / HTTP/1.1\r\n\r\n", ParseError::malformed},
      {[] {
         std::string empty_lines;
         for (size_t i = 0; i <= kHeadMax / 2; ++i) empty_lines += "\r\n";
         return empty_lines;
       }(),
       ParseError::head_too_large},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: " + std::string(kHeadMax, 't') + "\r\n\r\n",
       ParseError::head_too_large},
      {"POST / HTTP/1.1\r\nContent-Length: 65\r\n\r\n", ParseError::body_too_large},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n" + std::string(64, 'b') + "\r\n1\r\n",
       ParseError::body_too_large},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", ParseError::body_too_large},
  };
  for (const auto& [input, error] : cases) {
    for (const size_t piece : {size_t{1}, size_t{7}, input.size()}) {
      const auto reading = read_all(input, piece);
      EXPECT_EQ(reading.error, error) << "piece " << piece << ": " << input.substr(0, 60);
      EXPECT_TRUE(reading.requests.empty()) << input.substr(0, 60);
    }
  }
}

// Field values may hold tabs and bytes from 0x80 up, wherever they fall in the value.
TEST(RequestParser, TabsAndHighBytesAreFieldValueBytes) {
  const std::string value = "a\tb \x80\xff 0123456789\t\xc3\xa9 0123456789abcdef\t";
  const auto reading = read_all("GET /caf\xc3\xa9/0123456789 HTTP/1.1\r\nX: " + value + "\r\n\r\n", 3);
  ASSERT_EQ(reading.requests.size(), 1u) << reading.why;
  EXPECT_EQ(reading.requests[0].target, "/caf\xc3\xa9/0123456789");
  EXPECT_EQ(reading.requests[0].header("x"), "a\tb \x80\xff 0123456789\t\xc3\xa9 0123456789abcdef");
}

// A body exactly at the bound is taken, by length and chunked.
TEST(RequestParser, ABodyAtItsBoundIsTaken) {
  const std::string body(kBodyMax, 'b');
  auto by_length = read_all("POST / HTTP/1.1\r\nContent-Length: 64\r\n\r\n" + body, 5);
  ASSERT_EQ(by_length.requests.size(), 1u) << by_length.why;
  EXPECT_EQ(by_length.requests[0].body, body);
  auto chunked = read_all("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n" + body.substr(32) +
                              "\r\n20\r\n" + body.substr(32) + "\r\n0\r\n\r\n",
                          5);
  ASSERT_EQ(chunked.requests.size(), 1u) << chunked.why;
  EXPECT_EQ(chunked.requests[0].body, body);
}

// What the parser keeps untaken never outgrows its bounds, whatever arrives: random bytes
// and random mutations of valid requests, in random pieces, never leave more than a head
// (or a chunk line) and a piece waiting.
TEST(RequestParser, RandomInputsNeverHoldMoreThanTheBounds) {
  std::mt19937_64 random(20261205);
  const std::vector<std::string> seeds = {
      "GET /a HTTP/1.1\r\nHost: x\r\n\r\n",
      "POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
      "POST /c HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi",
  };
  const std::string alphabet = "\r\n :;0123456789abcdefGET/HTP.-\t\x01\x80";
  for (int round = 0; round < 3000; ++round) {
    std::string input;
    for (int part = 0; part < 4; ++part) input += seeds[random() % seeds.size()];
    for (int edit = 0; edit < 3; ++edit) {
      input[random() % input.size()] = alphabet[random() % alphabet.size()];
    }
    if (round % 10 == 0) input += std::string(3000, alphabet[random() % alphabet.size()]);
    const size_t piece = 1 + random() % 64;
    const auto reading = read_all(input, piece);
    EXPECT_LE(reading.left, kHeadMax + RequestParser::kChunkLineBytesMax + piece) << round;
  }
}

}  // namespace
}  // namespace balanced::http
