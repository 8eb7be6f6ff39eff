// Experiment planning for people: `abgate plan` and `GET /api/v1/plan` read the same parameters
// (baseline, mde, mde_relative, sd, alpha, power, weights, daily_units, days, total_units,
// sequential_tuning), run stats::Plan once and render one JSON report; the text form is drawn
// from that JSON. Pure (no I/O) and thread-compatible.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/value.hpp>

#include "absl/status/statusor.h"
#include "stats/power.h"

namespace abgate::analysis {

struct PlanRequest {
  stats::PlanInput input;
  std::optional<double> mde_relative;  // the effect as a fraction of the baseline, if given so
  std::optional<int64_t> daily_units;  // eligible units per day over all arms
};

// Parameters by name as the CLI and the query string spell them (names above; weights
// comma-separated, control first). InvalidArgument naming the parameter for a bad, unknown or
// repeated one, or an incomplete combination.
absl::StatusOr<PlanRequest> ParsePlanRequest(const std::vector<std::pair<std::string, std::string>>& params);
// The same from a URL query string (percent-decoded).
absl::StatusOr<PlanRequest> ParsePlanQuery(std::string_view query);

// Runs the plan: { metric, mode, inputs…, units_per_arm, total_units, power, mde, days?,
// sequential: {units_per_arm, total_units, power, mde, days?, extra_units, extra_percent} }.
// Errors of stats::Plan pass through.
absl::StatusOr<boost::json::value> PlanReport(const PlanRequest& request);
// A few lines for a terminal, from PlanReport's JSON.
std::string RenderPlanText(const boost::json::value& report);

}  // namespace abgate::analysis
