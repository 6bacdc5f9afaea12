#include "http/admin.h"

#include "http/problem.h"

namespace balanced::http {

AdminEndpoints::AdminEndpoints(observe::Registry& registry, Readiness ready)
    : registry_(registry), ready_(std::move(ready)) {}

std::optional<Response> AdminEndpoints::answer(const Request& request) {
  const std::string& path = request.path;
  if (path != "/metrics" && path != "/healthz" && path != "/readyz") return std::nullopt;
  if (request.method != "GET") return method_not_allowed("GET");
  Response response;
  if (path == "/metrics") {
    response.content_type = "text/plain; version=0.0.4; charset=utf-8";
    response.body = registry_.serialize();
    return response;
  }
  if (path == "/healthz") {
    response.body = "{\"status\":\"ok\"}";
    return response;
  }
  if (draining_) return problem_response(problems::unavailable, "draining");
  if (ready_) {
    if (Status status = ready_(); !status.ok()) {
      return problem_response(problems::unavailable, status.detail());
    }
  }
  response.body = "{\"status\":\"ready\"}";
  return response;
}

void AdminEndpoints::handle(Request&& request, Respond respond) {
  if (auto response = answer(request)) return respond(std::move(*response));
  respond(problem_response(problems::not_found, "no admin endpoint " + request.path));
}

}  // namespace balanced::http
