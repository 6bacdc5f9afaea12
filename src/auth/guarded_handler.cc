#include "auth/guarded_handler.h"

namespace balanced::auth {

void GuardedHandler::handle(http::Request&& request, http::Respond respond) {
  const http::Router::Match match = contract::api_router().match(request.method, request.path);
  const auto route = static_cast<contract::Route>(match.route);
  if (match.route < 0 || route == contract::Route::health || route == contract::Route::ready ||
      route == contract::Route::metrics) {
    return inner_.handle(std::move(request), std::move(respond));  // its own 404 and 405
  }
  Admission admission = gate_.admit(request, match.route, match);
  if (admission.deny) return respond(std::move(*admission.deny));
  if (admission.check_answer) {
    respond.decorate([this, principal = admission.principal](http::Response& response) {
      if (auto deny = gate_.check_answer(*principal, response)) response = std::move(*deny);
    });
  }
  inner_.handle(std::move(request), std::move(respond));
}

}  // namespace balanced::auth
