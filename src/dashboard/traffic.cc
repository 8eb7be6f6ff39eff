#include "dashboard/traffic.h"

#include <algorithm>
#include <limits>
#include <vector>

#include <boost/json/array.hpp>

namespace abgate::dashboard {

namespace json = boost::json;

json::object TrafficSplit(const analysis::AnalysisInput& input, int bins) {
  json::array arms;
  for (const auto& a : input.arms) arms.push_back(json::value(a.name));
  json::object out{{"arms", std::move(arms)}};
  json::array list;
  int64_t lo = std::numeric_limits<int64_t>::max(), hi = std::numeric_limits<int64_t>::min();
  for (const auto& u : input.units) {
    lo = std::min(lo, u.first_ts_us);
    hi = std::max(hi, u.first_ts_us);
  }
  if (input.units.empty() || bins < 1) {
    out["bins"] = std::move(list);
    return out;
  }
  const int64_t span = hi - lo + 1;
  const int n = static_cast<int>(std::min<int64_t>(bins, span));
  const size_t k = input.arms.size();
  std::vector<int64_t> counts(static_cast<size_t>(n) * k, 0);
  for (const auto& u : input.units) {
    // Integer bin of [lo, hi]: (ts - lo) * n / span, in 128 bits so long spans cannot overflow.
    const auto bin = static_cast<int>(static_cast<__int128>(u.first_ts_us - lo) * n / span);
    if (u.arm >= 0 && static_cast<size_t>(u.arm) < k) ++counts[static_cast<size_t>(bin) * k + u.arm];
  }
  for (int b = 0; b < n; ++b) {
    json::array units;
    for (size_t a = 0; a < k; ++a) units.push_back(counts[static_cast<size_t>(b) * k + a]);
    const int64_t start = lo + static_cast<int64_t>(static_cast<__int128>(span) * b / n);
    const int64_t end = lo + static_cast<int64_t>(static_cast<__int128>(span) * (b + 1) / n);
    list.push_back(json::object{{"start_us", start}, {"end_us", end}, {"units", std::move(units)}});
  }
  out["bins"] = std::move(list);
  return out;
}

}  // namespace abgate::dashboard
