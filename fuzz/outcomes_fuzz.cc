// POST /outcomes (one JSON object or JSON lines) through a real gateway on loopback with an
// SQLite store in /tmp: every body gets an answer (accepted, rejected per line, or 4xx), never
// a crash, a hang or a 5xx. Binary and continuous metrics, known and unknown experiments.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/strings.h"
#include "config/gateway_config.h"
#include "gateway/gateway.h"
#include "loopback.h"

namespace {

uint16_t StartGateway() {
  const std::string dir = "/tmp/abgate-outcomes-fuzz-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  const std::string yaml = abgate::StrCat(R"(
server: {listen: 127.0.0.1:0, admin_listen: 127.0.0.1:0, threads: 1}
events: {store: "sqlite:)", dir, R"(/events.db", flush_ms: 1}
experiments:
  - name: exp
    default: true
    arms:
      - {name: A, weight: 50, upstream: http://127.0.0.1:9/invocations}
      - {name: B, weight: 50, upstream: http://127.0.0.1:9/invocations}
    metrics:
      - {name: booked, type: binary, primary: true}
      - {name: revenue, type: continuous}
)");
  auto config = abgate::config::ParseGatewayConfig(yaml);
  if (!config.ok()) __builtin_trap();
  auto gw = abgate::gateway::Gateway::Create(*std::move(config), abgate::common::SystemClock::Get());
  if (!gw.ok()) __builtin_trap();
  (*gw)->Start();
  const uint16_t port = (*gw)->port();
  gw->release();  // serves until the process exits
  // The exchange counters at the end of a run (scripts/fuzz.sh prints this line).
  std::atexit([] { std::fprintf(stderr, "%s\n", abgate::fuzz::StatsLine().c_str()); });
  return port;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const uint16_t port = StartGateway();
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const std::string request = abgate::StrCat("POST /outcomes HTTP/1.1\r\nHost: x\r\nConnection: close\r\n",
                                             "Content-Type: application/x-ndjson\r\nContent-Length: ", body.size(),
                                             "\r\n\r\n", body);
  const abgate::fuzz::ExchangeResult r = abgate::fuzz::ExchangeWithResult(port, request);
  // "HTTP/1.1 200 ..." or a 4xx: a 5xx (or no answer) for a body is a bug. The finding's first
  // line says how the exchange ended (errno, timings): CI shows a log's last lines only.
  if (r.reply.size() < 12 || r.reply[9] == '5') {
    std::fprintf(stderr, "outcomes_fuzz: FINDING: %s; reply '%.*s'\n%s\n", r.Describe().c_str(),
                 static_cast<int>(std::min<size_t>(r.reply.size(), 200)), r.reply.data(),
                 abgate::fuzz::StatsLine().c_str());
    __builtin_trap();
  }
  return 0;
}
