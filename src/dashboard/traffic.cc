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
  // The units by first exposure: the input's, or the follower's statistics' (all of them,
  // maturing ones too, each with the report's arm index).
  std::vector<std::pair<int64_t, int>> units;
  if (input.state) {
    std::vector<int> report_arm(static_cast<size_t>(input.state->arms()), -1);
    for (size_t a = 0; a < input.state_arms.size(); ++a) {
      if (input.state_arms[a] >= 0) report_arm[static_cast<size_t>(input.state_arms[a])] = static_cast<int>(a);
    }
    units.reserve(static_cast<size_t>(input.state->counted_units() + input.state->maturing_units()));
    input.state->ForEachUnit(
        [&](const analysis::AnalysisState::Unit& u) { units.emplace_back(u.first_ts_us, report_arm[static_cast<size_t>(u.arm)]); });
  } else {
    units.reserve(input.units.size());
    for (const auto& u : input.units) units.emplace_back(u.first_ts_us, u.arm);
  }
  int64_t lo = std::numeric_limits<int64_t>::max(), hi = std::numeric_limits<int64_t>::min();
  for (const auto& [ts, _] : units) {
    lo = std::min(lo, ts);
    hi = std::max(hi, ts);
  }
  if (units.empty() || bins < 1) {
    out["bins"] = std::move(list);
    return out;
  }
  const int64_t span = hi - lo + 1;
  const int n = static_cast<int>(std::min<int64_t>(bins, span));
  const size_t k = input.arms.size();
  std::vector<int64_t> counts(static_cast<size_t>(n) * k, 0);
  for (const auto& [ts, arm] : units) {
    // Integer bin of [lo, hi]: (ts - lo) * n / span, in 128 bits so long spans cannot overflow.
    const auto bin = static_cast<int>(static_cast<__int128>(ts - lo) * n / span);
    if (arm >= 0 && static_cast<size_t>(arm) < k) ++counts[static_cast<size_t>(bin) * k + arm];
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
