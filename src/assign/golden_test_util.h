// Test-only helpers for the GrowthBook golden files in tests/data/assign.
#pragma once

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "assign/bucketer.h"

namespace abgate::assign::testing {

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// [[start, end], ...] → ranges.
inline std::vector<BucketRange> ToRanges(const boost::json::value& v) {
  std::vector<BucketRange> out;
  for (const auto& r : v.as_array()) {
    out.push_back({r.as_array()[0].to_number<double>(), r.as_array()[1].to_number<double>()});
  }
  return out;
}

}  // namespace abgate::assign::testing
