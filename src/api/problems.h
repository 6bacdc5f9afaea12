// The ledger's problems: the one place where a Code becomes an HTTP status and title.
#pragma once

#include <string_view>

#include "core/codes.h"
#include "http/problem.h"

namespace balanced::api {

http::Problem problem_for(Code code);
http::Response problem_response(Code code, std::string_view detail);

}  // namespace balanced::api
