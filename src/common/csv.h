// One CSV record split into fields: commas separate, double quotes quote ("" inside quotes is
// a quote), a trailing CR is dropped, spaces around unquoted fields are trimmed. Pure.
#pragma once

#include <charconv>
#include <cmath>
#include <string>
#include <string_view>
#include <vector>

namespace abgate::common {

inline std::vector<std::string> SplitCsvRecord(std::string_view line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        out.back().push_back('"');
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        out.back().push_back(c);
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.emplace_back();
    } else if (c != '\r') {
      out.back().push_back(c);
    }
  }
  for (auto& cell : out) {
    // One erase per cell: erasing the first character in a loop was quadratic in leading
    // spaces (a 1 MB field of spaces cost seconds).
    const size_t first = cell.find_first_not_of(' ');
    if (first == std::string::npos) {
      cell.clear();
      continue;
    }
    cell.erase(cell.find_last_not_of(' ') + 1);
    cell.erase(0, first);
  }
  return out;
}

// A CSV field as a finite number (the whole field, no leading '+' or spaces).
inline bool ParseFiniteDouble(std::string_view s, double& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty() && std::isfinite(out);
}

}  // namespace abgate::common
