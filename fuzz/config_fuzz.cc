// Configuration as YAML (`abgate serve --config`) and as JSON (the admin API's experiment
// bodies): never a crash, a hang or unbounded memory (issue 14: an alias bomb took 4 GB).
// The first byte picks the YAML or the JSON reader.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <boost/json.hpp>

#include "config/gateway_config.h"
#include "config/json_format.h"
#include "config/json_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 1) {
    auto c = abgate::config::ParseGatewayConfig(text);
    if (c.ok()) {
      for (const auto& e : c->experiments) {
        (void)abgate::config::ParseExperimentConfig(abgate::config::ExperimentToJson(e));
      }
    }
    return 0;
  }
  boost::system::error_code ec;
  boost::json::monotonic_resource arena;
  const boost::json::value v = abgate::config::ParseJson(text, &arena, ec);
  if (ec) return 0;
  (void)abgate::config::ParseExperimentConfig(v);
  (void)abgate::config::ParseGatewayConfigJson(v);
  abgate::config::ToJson(v);
  return 0;
}
