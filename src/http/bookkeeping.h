// What every response of a service passes once, in both binaries: counted and timed
// under its route, the request id echoed as X-Request-Id, and (when on) one
// access-log line. A RequestRecord is read off the request before it is handled;
// Bookkeeping::close() runs on the answer.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "http/message.h"
#include "http/router.h"

namespace balanced::http {

// What the access log says of a request besides its answer.
struct AccessFields {
  std::string method, path, client_ip, user, request_id, trace_id;
};

struct RequestRecord {
  std::chrono::steady_clock::time_point started;
  int route = -1;          // the router's, or -1: none matched
  std::string request_id;  // echoed as X-Request-Id when not empty
  // Set only while the access log is on (a cached read must not copy five strings).
  std::shared_ptr<AccessFields> access;
};

// The longest X-Request-Id echoed or logged (request_id_of assigns one otherwise).
inline constexpr size_t request_id_bytes_max = 128;

class Bookkeeping {
 public:
  struct Options {
    std::string_view service;  // service.name of the access log, e.g. "balanced"
    std::string_view dataset;  // event.dataset, e.g. "balanced.access"
    bool access_log = false;
    // true: a request without a valid X-Request-Id is given one, echoed and logged (the
    // edge: the gateway). false: only a valid one sent is echoed (behind the edge).
    bool assign_request_id = false;
  };
  // REQUIRES: `routes` and the option's views outlive this.
  Bookkeeping(RouteStats& routes, Options options) : routes_(routes), options_(options) {}

  // Starts the record of `request`, now. `user`: who asks, for the log; the route may
  // be set later. `trace_id`: the one the caller forwards (the gateway), else the
  // request's traceparent is read (a new id when it has none).
  RequestRecord open(const Request& request, int route = -1, std::string_view user = {},
                     std::string_view trace_id = {}) const;
  // Once per answer: counts and times it, echoes the request id, logs it.
  void close(const RequestRecord& record, Response& response) const;
  // For an answer the transport wrote itself (a head it could not read, a body too
  // large): counted under no route and logged, without a duration.
  void close_transport_error(const Request& head, Response& response) const;

 private:
  void log(const RequestRecord& record, const Response& response, int64_t duration_ns) const;
  RouteStats& routes_;
  const Options options_;
};

}  // namespace balanced::http
