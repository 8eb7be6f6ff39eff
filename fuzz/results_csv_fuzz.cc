// The CSV readers: SplitCsvRecord on every line, and ReadResultsCsv (`abgate analyze --csv`,
// `abgate import results`) on the whole input as a file. Never a crash; errors are statuses.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "analysis/analysis.h"
#include "common/csv.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    abgate::common::SplitCsvRecord(text.substr(start, end - start));
    start = end + 1;
  }
  static const std::string path = "/tmp/abgate-results-fuzz-" + std::to_string(::getpid()) + ".csv";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  (void)abgate::analysis::ReadResultsCsv(path, "");
  (void)abgate::analysis::ReadResultsCsv(path, "7");
  std::remove(path.c_str());
  return 0;
}
