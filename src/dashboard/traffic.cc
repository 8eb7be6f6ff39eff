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
  const size_t k = input.arms.size();
  int64_t lo = std::numeric_limits<int64_t>::max(), hi = std::numeric_limits<int64_t>::min();
  std::vector<int64_t> counts;
  int n = 0;
  if (input.state) {
    // The follower's statistics (every unit, maturing ones too): counts before each bin's
    // end from the state's blocks, not a pass over every unit.
    const analysis::AnalysisState& state = *input.state;
    if (state.units() == 0 || bins < 1) {
      out["bins"] = std::move(list);
      return out;
    }
    lo = state.first_ts_us();
    hi = state.last_ts_us();
    const int64_t span = hi - lo + 1;
    n = static_cast<int>(std::min<int64_t>(bins, span));
    // A unit is in bin b when b <= (ts - lo) * n / span, i.e. ts - lo >= ceil(span * b / n).
    std::vector<int64_t> bounds;
    for (int b = 1; b <= n; ++b) {
      bounds.push_back(lo + static_cast<int64_t>((static_cast<__int128>(span) * b + n - 1) / n));
    }
    const auto before = state.CountsBefore(bounds);
    counts.assign(static_cast<size_t>(n) * k, 0);
    for (size_t a = 0; a < input.state_arms.size() && a < k; ++a) {
      const int s = input.state_arms[a];
      if (s < 0) continue;
      for (int b = 0; b < n; ++b) {
        const auto& now = before[static_cast<size_t>(b)];
        const int64_t below = b > 0 ? before[static_cast<size_t>(b - 1)][static_cast<size_t>(s)] : 0;
        counts[static_cast<size_t>(b) * k + a] = now[static_cast<size_t>(s)] - below;
      }
    }
  } else {
    for (const auto& u : input.units) {
      lo = std::min(lo, u.first_ts_us);
      hi = std::max(hi, u.first_ts_us);
    }
    if (input.units.empty() || bins < 1) {
      out["bins"] = std::move(list);
      return out;
    }
    const int64_t span = hi - lo + 1;
    n = static_cast<int>(std::min<int64_t>(bins, span));
    counts.assign(static_cast<size_t>(n) * k, 0);
    for (const auto& u : input.units) {
      // Integer bin of [lo, hi]: (ts - lo) * n / span, in 128 bits so long spans cannot overflow.
      const auto bin = static_cast<int>(static_cast<__int128>(u.first_ts_us - lo) * n / span);
      if (u.arm >= 0 && static_cast<size_t>(u.arm) < k) ++counts[static_cast<size_t>(bin) * k + u.arm];
    }
  }
  const int64_t span = hi - lo + 1;
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
