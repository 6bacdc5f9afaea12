// Reads a connection's bytes with http::RequestParser as the server does, for the
// parser's unit tests and its fuzz target: the bytes arrive in pieces of a given size,
// appended to a buffer the parser takes from the front of.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "http/request_parser.h"

namespace balanced::testing {

// What reading one input gave: the requests read whole, then how it stopped.
struct RequestReading {
  std::vector<http::Request> requests;
  std::vector<bool> keep_alive;  // of each request
  http::ParseError error = http::ParseError::none;
  std::string why;
  size_t left = 0;        // bytes never taken (an unfinished request)
  size_t held_most = 0;   // the most bytes the buffer ever held untaken
};

// `body_max(i)` is the body bound of request i (as a route's would be).
inline RequestReading read_requests(std::string_view input, size_t piece, size_t head_max,
                                    const std::function<size_t(size_t)>& body_max) {
  using Step = http::RequestParser::Step;
  RequestReading reading;
  http::RequestParser parser(head_max);
  http::Request request;
  parser.start(request);
  std::string buffer;
  size_t fed = 0;
  for (;;) {
    const auto [step, used] = parser.put(buffer);
    buffer.erase(0, std::min(used, buffer.size()));
    reading.held_most = std::max(reading.held_most, buffer.size());
    if (step == Step::failed) {
      reading.error = parser.error();
      reading.why = parser.why();
      return reading;
    }
    if (step == Step::head) {
      if (!parser.begin_body(body_max(reading.requests.size()))) {
        reading.error = parser.error();
        reading.why = parser.why();
        return reading;
      }
      continue;
    }
    if (step == Step::done) {
      reading.keep_alive.push_back(parser.keep_alive());
      reading.requests.push_back(std::move(request));
      request = http::Request{};
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

}  // namespace balanced::testing
