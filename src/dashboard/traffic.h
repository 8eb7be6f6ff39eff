// The traffic split over time: how many units each arm gained in each interval of the
// experiment (units by their first exposure), for the dashboard's split chart. A ramp from 10%
// to 50% shows as the treatment's share of new units stepping up. Pure; thread-compatible.
#pragma once

#include <boost/json/object.hpp>

#include "analysis/analysis.h"

namespace abgate::dashboard {

// {"arms": [names], "bins": [{"start_us", "end_us", "units": [per arm]}]}: `bins` equal
// intervals from the first unit's first exposure to the last one's (fewer when the units span
// less time than that many microseconds; none without units).
boost::json::object TrafficSplit(const analysis::AnalysisInput& input, int bins);

}  // namespace abgate::dashboard
