#include "control/rollout.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <boost/json.hpp>

#include "common/status_macros.h"
#include "common/strings.h"
#include "common/human.h"
#include "analysis/analysis.h"

namespace abgate::control {
namespace json = boost::json;

namespace {

// A counter of the gateway's health reply (network data): absent or null is 0; otherwise a
// non-negative integer. Boost.JSON's to_number<int64_t> throws on 1.5, and 1e400 arrives as inf.
absl::StatusOr<int64_t> Count(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (!v || v->is_null()) return 0;
  if (v->is_int64() && v->as_int64() >= 0) return v->as_int64();
  if (v->is_uint64() && v->as_uint64() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return static_cast<int64_t>(v->as_uint64());
  }
  if (v->is_double() && v->as_double() >= 0 && v->as_double() < 9e18 && std::trunc(v->as_double()) == v->as_double()) {
    return static_cast<int64_t>(v->as_double());
  }
  return absl::InvalidArgumentError(StrCat("health: `", key, "` must be a non-negative integer"));
}

}  // namespace

absl::StatusOr<ArmHealth> ArmHealthFromJson(const json::object& arm) {
  ArmHealth h;
  ABGATE_ASSIGN_OR_RETURN(h.attempts, Count(arm, "attempts"));
  ABGATE_ASSIGN_OR_RETURN(h.failures, Count(arm, "failures"));
  if (auto* b = arm.if_contains("latency_ms_buckets"); b && !b->is_null()) {
    if (!b->is_array()) return absl::InvalidArgumentError("health: latency_ms_buckets must be an array");
    for (const auto& e : b->as_array()) {
      const json::object* o = e.if_object();
      const json::value* le = o ? o->if_contains("le") : nullptr;
      // The last bucket's bound is the string "+Inf"; a number must be finite (not 1e400 or 0e400).
      const bool finite = le && le->is_number() && std::isfinite(le->to_number<double>());
      if (!finite && !(le && le->is_string() && le->as_string() == "+Inf")) {
        return absl::InvalidArgumentError("health: each latency bucket needs `le` (a finite number or \"+Inf\")");
      }
      ABGATE_ASSIGN_OR_RETURN(const int64_t count, Count(*o, "count"));
      h.latency_buckets.emplace_back(finite ? le->to_number<double>() : std::numeric_limits<double>::infinity(), count);
    }
  }
  return h;
}

absl::StatusOr<std::map<std::string, ArmHealth>> HealthByArm(const json::object& health) {
  std::map<std::string, ArmHealth> out;
  const json::value* arms = health.if_contains("arms");
  if (!arms || !arms->is_array()) return absl::InvalidArgumentError("health: `arms` must be an array");
  for (const auto& a : arms->as_array()) {
    const json::object* o = a.if_object();
    const json::value* name = o ? o->if_contains("arm") : nullptr;
    if (!name || !name->is_string()) return absl::InvalidArgumentError("health: each arm needs a string `arm`");
    auto h = ArmHealthFromJson(*o);
    if (!h.ok()) return h.status();
    out[std::string(name->as_string())] = *std::move(h);
  }
  return out;
}

json::object ToJson(const ArmHealth& h) {
  json::array buckets;
  for (const auto& [le, n] : h.latency_buckets) {
    buckets.push_back(json::object{{"le", std::isinf(le) ? json::value("+Inf") : json::value(le)}, {"count", n}});
  }
  return json::object{{"attempts", h.attempts}, {"failures", h.failures}, {"latency_ms_buckets", std::move(buckets)}};
}

ArmHealth Since(const ArmHealth& now, const ArmHealth& base) {
  if (now.attempts < base.attempts || now.failures < base.failures ||
      now.latency_buckets.size() != base.latency_buckets.size()) {
    return now;
  }
  ArmHealth d;
  d.attempts = now.attempts - base.attempts;
  d.failures = now.failures - base.failures;
  for (size_t i = 0; i < now.latency_buckets.size(); ++i) {
    d.latency_buckets.emplace_back(now.latency_buckets[i].first,
                                   now.latency_buckets[i].second - base.latency_buckets[i].second);
  }
  return d;
}

std::string_view ActionName(Action a) {
  switch (a) {
    case Action::kWait: return "wait";
    case Action::kAdvance: return "advance";
    case Action::kPromote: return "promote";
    case Action::kRollback: return "rollback";
    case Action::kInconclusive: return "inconclusive";
  }
  return "?";
}

analysis::DecisionPolicy PolicyOf(const config::ExperimentConfig& experiment, double alpha) {
  analysis::DecisionPolicy p;
  for (const auto& m : experiment.metrics) {
    if (m.primary) p.primary_metric = m.name;
  }
  if (p.primary_metric.empty() && !experiment.metrics.empty()) p.primary_metric = experiment.metrics.front().name;
  p.alpha = alpha;
  p.max_error_rate = experiment.guardrails.max_error_rate;
  p.max_p99_latency_ms = experiment.guardrails.max_p99_latency_ms;
  return p;
}

json::object EvidenceJson(const analysis::Decision& d, const analysis::Report& report) {
  json::object e;
  e["metric"] = d.metric;
  e["action"] = d.action;
  e["reason"] = d.reason;
  if (d.evidence) {
    const auto& c = *d.evidence;
    e["treatment"] = c.treatment;
    e["test"] = c.test;
    e["diff"] = c.diff;
    e["diff_ci"] = json::array{c.diff_ci.low, c.diff_ci.high};
    if (c.lift) {
      e["lift"] = *c.lift;
      e["lift_ci"] = json::array{c.lift_ci->low, c.lift_ci->high};
    }
    e["p_value"] = c.p_value;
    if (c.sequential_p_value) e["sequential_p_value"] = *c.sequential_p_value;
    if (c.sequential_p_value_adjusted) e["sequential_p_value_adjusted"] = *c.sequential_p_value_adjusted;
    e["family"] = analysis::FamilyName(c.family);
    e["family_size"] = c.sequential_family_size;
    if (c.chance_to_beat) e["chance_to_beat"] = *c.chance_to_beat;
  }
  for (const auto& g : d.guardrails) {
    if (g.status != analysis::GuardrailResult::Status::kFail) continue;
    e["guardrail"] = g.name.rfind("metric:", 0) == 0 ? g.name.substr(7) : g.name;
    if (g.sequential_p_value) e["guardrail_sequential_p_value"] = *g.sequential_p_value;
    break;
  }
  json::object units;
  for (const auto& a : report.arms) units[a.arm] = a.units;
  e["units"] = std::move(units);
  return e;
}

Verdict Evaluate(const Look& look, const config::ControlledModelConfig& model, double alpha) {
  Verdict v;
  const analysis::Report& report = *look.report;
  const config::RolloutStepConfig& step = model.plan[look.step];
  const analysis::ArmReport* arm_a = report.Arm(look.control_arm);
  const analysis::ArmReport* arm_b = report.Arm(look.candidate_arm);
  const int64_t units_a = arm_a ? arm_a->units : 0;
  const int64_t units_b = arm_b ? arm_b->units : 0;

  v.decision = analysis::Decide(report, PolicyOf(model.parsed, alpha),
                                {{look.control_arm, look.control}, {look.candidate_arm, look.candidate}});
  const analysis::Decision& d = v.decision;
  v.evidence = EvidenceJson(d, report);
  v.evidence["step"] = step.name;
  v.evidence["error_rate"] = json::object{
      {look.control_arm, look.control.attempts ? static_cast<double>(look.control.failures) / look.control.attempts : 0},
      {look.candidate_arm,
       look.candidate.attempts ? static_cast<double>(look.candidate.failures) / look.candidate.attempts : 0}};
  v.evidence["p99_latency_ms"] = json::object{{look.control_arm, P99Ms(look.control)},
                                              {look.candidate_arm, P99Ms(look.candidate)}};

  const bool candidate_failed =
      std::find(d.failed_arms.begin(), d.failed_arms.end(), look.candidate_arm) != d.failed_arms.end();
  if (candidate_failed) {
    v.action = Action::kRollback;
    v.reason = d.reason;
    return v;
  }
  const bool step_done = look.step_elapsed_us >= step.min_duration_us && units_a + units_b >= step.min_units;
  const bool last = look.step + 1 == model.plan.size();
  if (look.total_elapsed_us >= model.max_duration_us) {
    v.action = Action::kInconclusive;
    v.reason = StrCat("maximum duration reached (", d.reason, "); the champion stays");
    return v;
  }
  if (!step_done) {
    v.reason = StrCat("step ", step.name, " (", step.percent, "%): waiting for its minimum duration and ", step.min_units,
                      " units (", units_a + units_b, " so far)");
    return v;
  }
  // The shadow gate: before any user sees the candidate, it must not be significantly worse
  // than the champion on the same requests (paired, from the step's outcomes).
  if (step.shadow_percent > 0) {
    for (const auto& e : report.shadow_evaluation) {
      if (e.shadow_arm != look.candidate_arm || !e.insufficient_data.empty()) continue;
      v.evidence["shadow_auc_diff"] = e.auc_diff;
      v.evidence["shadow_auc_p_value"] = e.auc_p_value;
      v.evidence["shadow_log_loss_diff"] = e.log_loss_diff;
      v.evidence["shadow_log_loss_p_value"] = e.log_loss_p_value;
      if (e.shadow_worse && model.shadow_gate) {
        v.action = Action::kRollback;
        v.reason = StrCat("shadow gate: ", analysis::ShadowEvaluationLine(e));
        v.evidence["guardrail"] = "shadow_evaluation";
        // The stored report carries this verdict, so the evidence shown later says rollback
        // (the analysis's own decision had no user traffic on B to judge: "continue").
        v.decision.action = "rollback";
        v.decision.winner = look.control_arm;
        v.decision.failed_arms = {look.candidate_arm};
        v.decision.reason = v.reason;
        return v;
      }
    }
  }
  if (!last) {
    v.action = Action::kAdvance;
    v.reason = StrCat("step ", step.name, " passed its guardrails");
    return v;
  }
  if (d.action == "promote" && d.winner == look.candidate_arm) {
    v.action = Action::kPromote;
    v.reason = StrCat(d.reason, ", after the final step");
    return v;
  }
  v.reason = StrCat("final step: ", d.reason);
  return v;
}

}  // namespace abgate::control
