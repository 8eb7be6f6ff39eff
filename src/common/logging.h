// Minimal leveled logging to stderr, one line per call, safe to call from any thread.
#pragma once

#include <string_view>

#include "absl/strings/str_format.h"

namespace abgate::common {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Lines below `level` are dropped. Default kInfo; ABGATE_LOG_LEVEL=debug|info|warning|error.
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);
// Writes "<utc time> <level> <message>\n" with one write(2), so lines never interleave.
void LogLine(LogLevel level, std::string_view message);

}  // namespace abgate::common

#define ABGATE_LOG(level, ...)                                                         \
  do {                                                                                 \
    if (::abgate::common::LogEnabled(::abgate::common::LogLevel::level)) {             \
      ::abgate::common::LogLine(::abgate::common::LogLevel::level,                     \
                                ::absl::StrFormat(__VA_ARGS__));                       \
    }                                                                                  \
  } while (0)
