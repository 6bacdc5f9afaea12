#include "http/problem.h"

#include "core/json_text.h"

namespace balanced::http {

Response problem_response(const Problem& problem, std::string_view detail) {
  Response response;
  response.status = problem.status;
  response.content_type = "application/problem+json";
  response.body = "{\"type\":\"/problems/";
  response.body.append(problem.code);
  response.body.append("\",\"title\":");
  response.body.append(core::json_string(problem.title));
  response.body.append(",\"status\":");
  response.body.append(std::to_string(problem.status));
  response.body.append(",\"detail\":");
  response.body.append(core::json_string(detail));
  response.body.append(",\"code\":\"");
  response.body.append(problem.code);
  response.body.append("\"}");
  if (problem.status == 503 || problem.status == 429) {
    response.headers.emplace_back("Retry-After", "1");
  }
  return response;
}

Response method_not_allowed(std::string_view allow) {
  Response response =
      problem_response(problems::method_not_allowed, "this path accepts " + std::string(allow));
  response.headers.emplace_back("Allow", std::string(allow));
  return response;
}

}  // namespace balanced::http
