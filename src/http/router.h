// Routes a request by method and path pattern ("/accounts/{number}/balance") to a route
// with a label, for the handler's switch and the per-route metrics. Literal segments win
// over parameters when both match ("/accounts/transactions" before "/accounts/{n}").
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "observe/registry.h"

namespace balanced::http {

class Router {
 public:
  static constexpr size_t params_max = 4;
  static constexpr size_t segments_max = 8;

  struct Match {
    int route = -1;     // the id given to add(); -1 when nothing matches
    std::string allow;  // path matched but not the method: "GET, POST" (route stays -1)
    std::array<std::string_view, params_max> params{};  // {name} segments, in order
    std::string_view param(size_t index) const { return params[index]; }
  };

  // Adds a route. `id` is the caller's (an enum value); `label` names it in metrics.
  void add(int id, std::string_view method, std::string_view pattern, std::string label);
  // Views into `path`, which must outlive the match. A trailing slash is ignored.
  Match match(std::string_view method, std::string_view path) const;
  // Distinct labels of the routes, in the order added, then "other".
  std::vector<std::string> labels() const;
  // The label of route `id`, "other" for -1.
  const std::string& label(int id) const;
  // Index of label(id) in labels().
  size_t label_index(int id) const;

 private:
  struct Segment {
    std::string text;
    bool param = false;  // "{...}": matches any non-empty segment
  };
  struct Entry {
    int id;
    std::string method;
    std::vector<Segment> segments;
    std::string label;
    size_t label_index;
    size_t literals;  // how many segments are literal, for precedence
  };
  std::vector<Entry> entries_;
  // Indexes into entries_ by how many segments a route has: a path is matched against
  // its own length's routes only.
  std::array<std::vector<size_t>, segments_max + 1> by_segments_;
  std::vector<std::string> labels_;
};

// Requests by route and status class, and their duration by route: one counter family
// `<prefix>_requests_total{route,code}` and one histogram `<prefix>_request_duration_seconds{route}`.
class RouteStats {
 public:
  RouteStats(observe::Registry& registry, const std::string& prefix, const Router& router);
  void observe(int route, int status, double seconds);

 private:
  static constexpr size_t status_classes = 6;  // 1xx..5xx, other
  const Router& router_;
  std::vector<std::array<prometheus::Counter*, status_classes>> requests_;
  std::vector<prometheus::Histogram*> seconds_;
};

}  // namespace balanced::http
