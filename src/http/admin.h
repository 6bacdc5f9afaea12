// The admin endpoints every binary serves: GET /metrics (Prometheus text format),
// /healthz (the process is alive) and /readyz (it can serve: the component says).
// Served on an admin listener apart from the API, or mixed into the API's own routes.
#pragma once

#include <atomic>
#include <functional>
#include <optional>

#include "core/codes.h"
#include "http/message.h"
#include "observe/registry.h"

namespace balanced::http {

class AdminEndpoints final : public Handler {
 public:
  using Readiness = std::function<Status()>;
  // The registry must outlive this. `ready` is asked on every /readyz.
  AdminEndpoints(observe::Registry& registry, Readiness ready);

  // The answer for an admin path, or nullopt when `request` is not one.
  std::optional<Response> answer(const Request& request);
  // Handler: admin paths, and 404 for anything else.
  void handle(Request&& request, Respond respond) override;
  // From now on /readyz answers 503, so that load balancers stop sending traffic.
  void set_draining() { draining_ = true; }

 private:
  observe::Registry& registry_;
  Readiness ready_;
  std::atomic<bool> draining_{false};
};

}  // namespace balanced::http
