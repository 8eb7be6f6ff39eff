// The HTTP request head as abgate's servers read it: the raw bytes go over loopback to a real
// http::Service (Beast's parser with our limits → 400/408/413/431, keep-alive, pipelining) whose
// Router has the shapes of the gateway's and registry's routes. Never a crash or a hang.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "http/router.h"
#include "http/service.h"
#include "loopback.h"

namespace {

uint16_t StartServer() {
  auto* router = new abgate::http::Router();  // lives as long as the process
  auto echo = [](abgate::http::Request& req, abgate::http::Respond respond) {
    std::string out(req.FindHeader("Content-Type"));
    out += req.PathParam("name");
    out += req.query;
    std::move(respond)(abgate::http::Response::Json(200, out + req.body.substr(0, 64)));
  };
  router->Add("POST", "/predict", echo);
  router->Add("POST", "/predict/{name}", echo);
  router->Add("GET", "/api/v1/experiments/{name}", echo);
  router->Add("PATCH", "/api/v1/experiments/{name}/assignments/{unit}", echo);
  router->Add("GET", "/healthz", echo);
  abgate::http::ServerOptions options;
  options.port = 0;
  options.max_body_bytes = 64 << 10;
  options.max_header_bytes = 4 << 10;
  options.read_timeout_us = 2'000'000;
  auto service = abgate::http::Service::Create(1, options, [router](abgate::http::Request& req,
                                                                   abgate::http::Respond respond) {
    router->Dispatch(req, std::move(respond));
  });
  if (!service.ok()) __builtin_trap();
  (*service)->Start();
  const uint16_t port = (*service)->port();
  service->release();  // serves until the process exits
  return port;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const uint16_t port = StartServer();
  abgate::fuzz::Exchange(port, std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
