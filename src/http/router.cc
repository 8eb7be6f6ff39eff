#include "http/router.h"

#include <boost/url/pct_string_view.hpp>

#include "common/strings.h"

namespace abgate::http {
namespace {

std::vector<std::string_view> Split(std::string_view path) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    const size_t j = path.find('/', i);
    const size_t end = j == std::string_view::npos ? path.size() : j;
    out.push_back(path.substr(i, end - i));
    i = end;
  }
  return out;
}

}  // namespace

void Router::Add(std::string method, std::string pattern, Handler handler) {
  auto route = std::make_unique<Route>();
  route->method = std::move(method);
  for (auto s : Split(pattern)) route->segments.emplace_back(s);
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
