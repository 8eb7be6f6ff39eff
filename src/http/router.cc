#include "http/router.h"

#include <array>
#include <cassert>

#include <boost/url/pct_string_view.hpp>

#include "common/strings.h"

namespace abgate::http {
namespace {

// A path's segments without a heap allocation per request. A path with more segments than
// kMaxSegments matches no route (none has that many; Add checks), so the count is still kept.
constexpr size_t kMaxSegments = 16;
struct Segments {
  std::array<std::string_view, kMaxSegments> parts;
  size_t count = 0;
  size_t size() const { return count; }
  std::string_view operator[](size_t i) const { return parts[i]; }
};

Segments Split(std::string_view path) {
  Segments out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    const size_t j = path.find('/', i);
    const size_t end = j == std::string_view::npos ? path.size() : j;
    if (out.count < kMaxSegments) out.parts[out.count] = path.substr(i, end - i);
    ++out.count;
    i = end;
  }
  return out;
}

}  // namespace

void Router::Add(std::string method, std::string pattern, Handler handler) {
  auto route = std::make_unique<Route>();
  route->method = std::move(method);
  const Segments segments = Split(pattern);
  assert(segments.size() <= kMaxSegments);  // a route longer than Split keeps could never match
  for (size_t i = 0; i < segments.size(); ++i) route->segments.emplace_back(segments[i]);
  route->pattern = std::move(pattern);
  route->handler = std::move(handler);
  routes_.push_back(std::move(route));
}

void Router::Dispatch(Request& req, Respond respond) {
  const auto segments = Split(req.path);
  std::string allow;
  for (auto& route : routes_) {
    if (route->segments.size() != segments.size()) continue;
    std::vector<std::pair<std::string, std::string>> params;
    bool match = true;
    for (size_t i = 0; i < segments.size() && match; ++i) {
      const std::string& p = route->segments[i];
      if (p.size() > 2 && p.front() == '{' && p.back() == '}') {
        // Captured segments are percent-decoded (a unit id may hold any character).
        auto decoded = boost::urls::make_pct_string_view(boost::core::string_view(segments[i].data(), segments[i].size()));
        if (!decoded) {
          match = false;
          continue;
        }
        params.emplace_back(p.substr(1, p.size() - 2), decoded->decode());
      } else {
        match = p == segments[i];
      }
    }
    if (!match) continue;
    if (route->method != req.method) {
      if (!allow.empty()) allow += ", ";
      allow += route->method;
      continue;
    }
    req.path_params = std::move(params);
    route->handler(req, std::move(respond));
    return;
  }
  if (!allow.empty()) {
    Response r = ErrorResponse(405, "METHOD_NOT_ALLOWED",
                               StrCat("method ", req.method, " is not allowed on ", req.path));
    r.headers.push_back({"Allow", allow});
    std::move(respond)(std::move(r));
    return;
  }
  std::move(respond)(ErrorResponse(404, "ENDPOINT_NOT_FOUND", StrCat("no endpoint ", req.path)));
}

}  // namespace abgate::http
