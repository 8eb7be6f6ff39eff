// Rollout decisions, pure: from the analysis report and the arms' serving health, what the
// controller does next at a step of a progressive rollout — wait, advance to the next step,
// promote, roll back (a guardrail failed) or stop inconclusive (maximum duration reached).
//
// Guardrails, checked at every look and valid however often one looks (mixture sequential
// tests, stats/sequential.h): the candidate's error rate above `max_error_rate` and
// significantly above the control's; its p99 latency above `max_p99_latency_ms`, i.e. more than
// 1% of its requests significantly often slower than that (from the latency histogram, whose
// bounds — 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500 ms, ... — make the natural limits; a limit
// between bounds is checked at the next bound up); and the primary metric significantly worse
// than the control's. Promotion needs the final step's minimum duration and units, no sample
// ratio mismatch, and the primary metric significantly better under the sequential test.
// Thread-compatible values.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>

#include "config/gateway_config.h"

namespace abgate::control {

// Cumulative serving counters of one arm (GET /api/v1/experiments/{name}/health).
struct ArmHealth {
  int64_t attempts = 0;
  int64_t failures = 0;
  std::vector<std::pair<double, int64_t>> latency_buckets;  // (upper bound ms, cumulative count); +Inf last
};
ArmHealth ArmHealthFromJson(const boost::json::object& arm);
boost::json::object ToJson(const ArmHealth& h);
// `now - base`, or `now` itself when the counters went backwards (the gateway restarted).
ArmHealth Since(const ArmHealth& now, const ArmHealth& base);
// The upper bound of the histogram bucket holding the 99th percentile (infinity past the last).
double P99Ms(const ArmHealth& h);

enum class Action { kWait, kAdvance, kPromote, kRollback, kInconclusive };
std::string_view ActionName(Action a);

struct Look {
  const boost::json::object* report = nullptr;  // analysis JSON of the experiment
  ArmHealth control;                            // since the experiment started
  ArmHealth candidate;
  std::string control_arm = "A";
  std::string candidate_arm = "B";
  size_t step = 0;  // index into the plan
  int64_t step_elapsed_us = 0;
  int64_t total_elapsed_us = 0;
};

struct Verdict {
  Action action = Action::kWait;
  std::string reason;
  boost::json::object evidence;  // test, p-values, lift and CI, units: what the decision rests on
};

Verdict Evaluate(const Look& look, const config::ControlledModelConfig& model, double alpha);

}  // namespace abgate::control
