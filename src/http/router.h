// Router: method + path pattern → handler. Patterns are literal segments and `{name}`
// captures ("/api/v1/experiments/{name}/weights"). Routes are added before serving and the
// router is then read-only, so Dispatch is thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "http/message.h"

namespace abgate::http {

class Router {
 public:
  void Add(std::string method, std::string pattern, Handler handler);
  // Routes `req`, filling req.path_params. Unknown path → 404 JSON (ENDPOINT_NOT_FOUND);
  // known path, other method → 405 JSON with an Allow header.
  void Dispatch(Request& req, Respond respond);

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    std::string pattern;
    Handler handler;
  };
  std::vector<std::unique_ptr<Route>> routes_;
};

}  // namespace abgate::http
