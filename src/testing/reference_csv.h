// Reading the statistics reference files (tests/data/stats/*.csv): header-only, so the pure
// libraries' tests use it without linking the testing library's servers and stores.
#ifndef ABGATE_TESTING_REFERENCE_CSV_H_
#define ABGATE_TESTING_REFERENCE_CSV_H_

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "testing/test_paths.h"

namespace abgate::testing {

// Rows of a reference CSV in tests/data/stats as column name → text. Lines starting with '#' are
// provenance.
inline std::vector<std::map<std::string, std::string>> ReadReferenceCsv(const std::string& name) {
  std::ifstream in((std::string(ABGATE_TEST_DATA_DIR) + "/stats/") + name);
  EXPECT_TRUE(in.good()) << name;
  std::vector<std::map<std::string, std::string>> rows;
  std::vector<std::string> header;
  std::string line;
  auto split = [](const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string cell;
    while (std::getline(ss, cell, ',')) out.push_back(cell);
    return out;
  };
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (header.empty()) {
      header = split(line);
      continue;
    }
    const auto cells = split(line);
    std::map<std::string, std::string> row;
    for (size_t i = 0; i < header.size() && i < cells.size(); ++i) row[header[i]] = cells[i];
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace abgate::testing

#endif  // ABGATE_TESTING_REFERENCE_CSV_H_
