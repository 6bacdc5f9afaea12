#include "http/bookkeeping.h"

#include "http/tracing.h"
#include "observe/access_log.h"

namespace balanced::http {

RequestRecord Bookkeeping::open(const Request& request, int route, std::string_view user,
                                std::string_view trace_id) const {
  RequestRecord record{.started = std::chrono::steady_clock::now(), .route = route};
  if (options_.assign_request_id) {
    record.request_id = request_id_of(request);
  } else if (const std::string_view sent = request.header("X-Request-Id");
             sent.size() <= request_id_bytes_max) {
    record.request_id = sent;
  }
  if (options_.access_log) {
    record.access = std::make_shared<AccessFields>();
    AccessFields& access = *record.access;
    access.method = request.method.empty() ? "-" : request.method;
    access.path = request.path.empty() ? request.target.substr(0, request.target.find('?')) : request.path;
    access.client_ip = request.peer_address;
    access.user = user;
    access.request_id = options_.assign_request_id ? record.request_id : request_id_of(request);
    if (trace_id.empty()) {
      traceparent_of(request, access.trace_id);
    } else {
      access.trace_id = trace_id;
    }
  }
  return record;
}

void Bookkeeping::close(const RequestRecord& record, Response& response) const {
  const auto elapsed = std::chrono::steady_clock::now() - record.started;
  routes_.observe(record.route, response.status, std::chrono::duration<double>(elapsed).count());
  if (!record.request_id.empty()) response.set_header("X-Request-Id", record.request_id);
  log(record, response, std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count());
}

void Bookkeeping::close_transport_error(const Request& head, Response& response) const {
  const RequestRecord record = open(head);
  routes_.observe(-1, response.status, 0);
  if (!record.request_id.empty()) response.set_header("X-Request-Id", record.request_id);
  log(record, response, 0);
}

void Bookkeeping::log(const RequestRecord& record, const Response& response, int64_t duration_ns) const {
  if (!record.access) return;
  const AccessFields& access = *record.access;
  observe::log_access(options_.service, options_.dataset,
                      {.method = access.method,
                       .path = access.path,
                       .status = response.status,
                       .duration_ns = duration_ns,
                       .client_ip = access.client_ip,
                       .user = access.user,
                       .request_id = access.request_id,
                       .trace_id = access.trace_id});
}

}  // namespace balanced::http
