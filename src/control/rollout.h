// Rollout decisions, pure: from the analysis report and the arms' serving health, what the
// controller does next at a step of a progressive rollout — wait, advance to the next step,
// promote, roll back (a guardrail failed) or stop inconclusive (maximum duration reached).
// Whether the candidate is better, worse or failing a guardrail is `analysis::Decide`'s call
// (decision.h: the one rule shared with `analyze`, `results` and `promote --winner auto`);
// this file adds only the plan: minimum duration and units per step, the maximum duration.
// Thread-compatible values.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>

#include "absl/status/statusor.h"
#include "analysis/decision.h"
#include "analysis/report.h"
#include "config/gateway_config.h"

namespace abgate::control {

// Cumulative serving counters of one arm (GET /api/v1/experiments/{name}/health).
using ArmHealth = analysis::ServingHealth;
using analysis::P99Ms;
// One arm of the health endpoint's reply; InvalidArgument when it is malformed (never throws).
absl::StatusOr<ArmHealth> ArmHealthFromJson(const boost::json::object& arm);
// Every arm of the health endpoint's reply, by arm name.
absl::StatusOr<std::map<std::string, ArmHealth>> HealthByArm(const boost::json::object& health);
boost::json::object ToJson(const ArmHealth& h);
// `now - base`, or `now` itself when the counters went backwards (the gateway restarted).
ArmHealth Since(const ArmHealth& now, const ArmHealth& base);

enum class Action { kWait, kAdvance, kPromote, kRollback, kInconclusive };
std::string_view ActionName(Action a);

struct Look {
  const analysis::Report* report = nullptr;  // analysis of the current step's window
  ArmHealth control;                         // over the same window
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
  analysis::Decision decision;   // Decide's, with the serving guardrails
  boost::json::object evidence;  // EvidenceJson(decision) plus the step: what tags and runs record
};

// The policy of a controlled model: its primary metric, guardrails and alpha.
analysis::DecisionPolicy PolicyOf(const config::ExperimentConfig& experiment, double alpha);

Verdict Evaluate(const Look& look, const config::ControlledModelConfig& model, double alpha);

// The evidence of a decision as flat JSON (registry tags `ab_test.<key>`, audit, run metrics):
// metric, reason, test, diff, diff_ci, lift, lift_ci, p_value, sequential_p_value,
// sequential_p_value_adjusted, family_size, chance_to_beat, guardrail (the failed one), units.
boost::json::object EvidenceJson(const analysis::Decision& d, const analysis::Report& report);

}  // namespace abgate::control
