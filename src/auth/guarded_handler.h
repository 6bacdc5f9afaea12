// balanced's own token checks (DESIGN.md section 9): the gate in front of the API, so a
// replica that is reachable by more than the gateway still moves no money without a
// valid token. /healthz, /readyz and /metrics stay open (probes, Prometheus).
#pragma once

#include "auth/gate.h"
#include "http/message.h"

namespace balanced::auth {

class GuardedHandler final : public http::Handler {
 public:
  // Both must outlive this.
  GuardedHandler(http::Handler& inner, Gate& gate) : inner_(inner), gate_(gate) {}
  void handle(http::Request&& request, http::Respond respond) override;
  size_t body_bytes_max(std::string_view method, std::string_view target) const override {
    return inner_.body_bytes_max(method, target);
  }

 private:
  http::Handler& inner_;
  Gate& gate_;
};

}  // namespace balanced::auth
