#include "common/logging.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace abgate::common {
namespace {

std::atomic<int>& Level() {
  static std::atomic<int> level = [] {
    const char* env = std::getenv("ABGATE_LOG_LEVEL");
    std::string_view v = env ? env : "";
    if (v == "debug") return 0;
    if (v == "warning") return 2;
    if (v == "error") return 3;
    return 1;
  }();
  return level;
}

constexpr std::string_view kNames[] = {"DEBUG", "INFO", "WARN", "ERROR"};

}  // namespace

void SetLogLevel(LogLevel level) { Level().store(static_cast<int>(level)); }

bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= Level().load(); }

void LogLine(LogLevel level, std::string_view message) {
  std::string line = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ ", absl::Now(), absl::UTCTimeZone());
  line.append(kNames[static_cast<int>(level)]);
  line.push_back(' ');
  line.append(message);
  line.push_back('\n');
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace abgate::common
