#include "http/router.h"

#include <algorithm>
#include <cassert>

namespace balanced::http {
namespace {

const std::string kOther = "other";

// A path's segments, in place: matching a request allocates nothing.
struct Segments {
  std::array<std::string_view, Router::segments_max> parts;
  size_t size = 0;
  std::string_view operator[](size_t i) const { return parts[i]; }
  const std::string_view* begin() const { return parts.data(); }
  const std::string_view* end() const { return parts.data() + size; }
};

// Splits "/a/b/c" into {"a","b","c"}; false when there are more than segments_max.
bool split(std::string_view path, Segments& out) {
  out.size = 0;
  if (path.starts_with('/')) path.remove_prefix(1);
  if (path.ends_with('/')) path.remove_suffix(1);
  if (path.empty()) return true;
  while (true) {
    if (out.size == out.parts.size()) return false;
    const size_t slash = path.find('/');
    out.parts[out.size++] = path.substr(0, slash);
    if (slash == std::string_view::npos) return true;
    path.remove_prefix(slash + 1);
  }
}

bool is_param(std::string_view segment) {
  return segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
}

}  // namespace

void Router::add(int id, std::string_view method, std::string_view pattern, std::string label) {
  Segments parts;
  const bool fits = split(pattern, parts);
  assert(fits);
  (void)fits;
  Entry entry{id, std::string(method), {}, std::move(label), 0, 0};
  size_t params = 0;
  for (auto part : parts) {
    entry.segments.push_back(Segment{std::string(part), is_param(part)});
    if (is_param(part)) {
      ++params;
    } else {
      ++entry.literals;
    }
  }
  assert(params <= params_max);
  auto found = std::find(labels_.begin(), labels_.end(), entry.label);
  entry.label_index = static_cast<size_t>(found - labels_.begin());
  if (found == labels_.end()) labels_.push_back(entry.label);
  by_segments_[entry.segments.size()].push_back(entries_.size());
  entries_.push_back(std::move(entry));
}

Router::Match Router::match(std::string_view method, std::string_view path) const {
  Match best;
  Segments parts;
  if (!split(path, parts)) return best;
  // Only routes with as many segments as the path can match it.
  const std::vector<size_t>& candidates = by_segments_[parts.size];
  const auto matches_path = [&parts](const Entry& entry) {
    for (size_t i = 0; i < parts.size; ++i) {
      const Segment& segment = entry.segments[i];
      if (segment.param ? parts[i].empty() : segment.text != parts[i]) return false;
    }
    return true;
  };
  // The method first: it rules out most routes in one short compare.
  const Entry* chosen = nullptr;
  for (const size_t index : candidates) {
    const Entry& entry = entries_[index];
    if (entry.method != method || !matches_path(entry)) continue;
    if (chosen == nullptr || entry.literals > chosen->literals) chosen = &entry;
  }
  if (chosen == nullptr) {  // 404, or 405 with the methods the path has
    std::vector<std::string_view> allowed;
    for (const size_t index : candidates) {
      if (matches_path(entries_[index])) allowed.push_back(entries_[index].method);
    }
    std::sort(allowed.begin(), allowed.end());
    allowed.erase(std::unique(allowed.begin(), allowed.end()), allowed.end());
    for (auto allow : allowed) {
      if (!best.allow.empty()) best.allow += ", ";
      best.allow += allow;
    }
    return best;
  }
  best.route = chosen->id;
  size_t param = 0;
  for (size_t i = 0; i < parts.size; ++i) {
    if (chosen->segments[i].param) best.params[param++] = parts[i];
  }
  return best;
}

std::vector<std::string> Router::labels() const {
  std::vector<std::string> all = labels_;
  all.push_back(kOther);
  return all;
}

const std::string& Router::label(int id) const {
  for (const Entry& entry : entries_) {
    if (entry.id == id) return entry.label;
  }
  return kOther;
}

size_t Router::label_index(int id) const {
  for (const Entry& entry : entries_) {
    if (entry.id == id) return entry.label_index;
  }
  return labels_.size();
}

RouteStats::RouteStats(observe::Registry& registry, const std::string& prefix,
                       const Router& router)
    : router_(router) {
  static constexpr std::array<std::string_view, status_classes> kClasses{"1xx", "2xx", "3xx",
                                                                        "4xx", "5xx", "other"};
  auto& requests = registry.counters(prefix + "_requests_total",
                                     "HTTP requests by route and status class");
  auto& seconds = registry.histograms(prefix + "_request_duration_seconds",
                                      "Time from a request's last byte to its response, by route");
  for (const std::string& label : router.labels()) {
    std::array<prometheus::Counter*, status_classes> counters{};
    for (size_t i = 0; i < status_classes; ++i) {
      counters[i] = &requests.Add({{"route", label}, {"code", std::string(kClasses[i])}});
    }
    requests_.push_back(counters);
    seconds_.push_back(&seconds.Add({{"route", label}}, observe::Registry::latency_buckets()));
  }
}

void RouteStats::observe(int route, int status, double seconds) {
  const size_t index = router_.label_index(route);
  const size_t status_class =
      status >= 100 && status < 600 ? static_cast<size_t>(status / 100 - 1) : status_classes - 1;
  requests_[index][status_class]->Increment();
  seconds_[index]->Observe(seconds);
}

}  // namespace balanced::http
