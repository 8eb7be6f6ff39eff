#include "dashboard/dashboard.h"

#include <string>

#include "dashboard/assets.h"

namespace abgate::dashboard {

namespace {

http::Response Serve(const Asset& a) {
  http::Response r = http::Response::Text(200, std::string(a.body), std::string(a.content_type));
  r.headers.push_back({"Content-Security-Policy",
                       "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"});
  r.headers.push_back({"X-Content-Type-Options", "nosniff"});
  r.headers.push_back({"Referrer-Policy", "no-referrer"});
  r.headers.push_back({"Cache-Control", "no-cache"});
  return r;
}

}  // namespace

void RegisterRoutes(http::Router& router) {
  router.Add("GET", "/", [](http::Request&, http::Respond respond) {
    http::Response r = http::Response::Text(302, "see /dashboard\n");
    r.headers.push_back({"Location", "/dashboard"});
    std::move(respond)(std::move(r));
  });
  router.Add("GET", "/dashboard", [](http::Request&, http::Respond respond) {
    std::move(respond)(Serve(*FindAsset("index.html")));
  });
  router.Add("GET", "/dashboard/{file}", [](http::Request& req, http::Respond respond) {
    const Asset* a = FindAsset(req.PathParam("file"));
    if (!a) return std::move(respond)(http::ErrorResponse(404, "NOT_FOUND", "no such dashboard file"));
    std::move(respond)(Serve(*a));
  });
}

}  // namespace abgate::dashboard
