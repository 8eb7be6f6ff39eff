#include "control/rollout.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <boost/json.hpp>

#include "common/strings.h"
#include "stats/sequential.h"

namespace abgate::control {
namespace json = boost::json;

namespace {

double Num(const json::value* v, double def = 0) {
  return v && v->is_number() ? v->to_number<double>() : def;
}
int64_t Int(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_number() ? v->to_number<int64_t>() : 0;
}

// The comparison of the candidate against control on `metric`, or null.
const json::object* Comparison(const json::object& report, std::string_view metric, std::string_view treatment) {
  auto* list = report.if_contains("comparisons");
  if (!list || !list->is_array()) return nullptr;
  for (const auto& c : list->as_array()) {
    if (!c.is_object()) continue;
    const auto& o = c.as_object();
    auto* m = o.if_contains("metric");
    auto* t = o.if_contains("treatment");
    if (m && t && m->is_string() && t->is_string() && m->as_string() == metric && t->as_string() == treatment) return &o;
  }
  return nullptr;
}

int64_t UnitsOf(const json::object& report, std::string_view arm) {
  auto* arms = report.if_contains("arms");
  if (!arms || !arms->is_array()) return 0;
  for (const auto& a : arms->as_array()) {
    if (a.is_object() && a.as_object().if_contains("arm") && a.as_object().at("arm") == json::value(arm)) {
      return Int(a.as_object(), "units");
    }
  }
  return 0;
}

}  // namespace

ArmHealth ArmHealthFromJson(const json::object& arm) {
  ArmHealth h;
  h.attempts = Int(arm, "attempts");
  h.failures = Int(arm, "failures");
  if (auto* b = arm.if_contains("latency_ms_buckets"); b && b->is_array()) {
    for (const auto& e : b->as_array()) {
      if (!e.is_object()) continue;
      const auto& o = e.as_object();
      const double le = o.at("le").is_number() ? o.at("le").to_number<double>() : std::numeric_limits<double>::infinity();
      h.latency_buckets.emplace_back(le, Int(o, "count"));
    }
  }
  return h;
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

double P99Ms(const ArmHealth& h) {
  if (h.latency_buckets.empty()) return 0;
  const int64_t total = h.latency_buckets.back().second;
  if (total == 0) return 0;
  const double target = 0.99 * static_cast<double>(total);
  for (const auto& [le, cumulative] : h.latency_buckets) {
    if (static_cast<double>(cumulative) >= target) return le;
  }
  return std::numeric_limits<double>::infinity();
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

Verdict Evaluate(const Look& look, const config::ControlledModelConfig& model, double alpha) {
  Verdict v;
  const json::object& report = *look.report;
  const auto& guard = model.parsed.guardrails;
  const config::RolloutStepConfig& step = model.plan[look.step];
  const int64_t units_a = UnitsOf(report, look.control_arm);
  const int64_t units_b = UnitsOf(report, look.candidate_arm);
  v.evidence["step"] = step.name;
  v.evidence["units"] = json::object{{look.control_arm, units_a}, {look.candidate_arm, units_b}};

  // Guardrail 1: error rate.
  const ArmHealth& a = look.control;
  const ArmHealth& b = look.candidate;
  const double rate_a = a.attempts ? static_cast<double>(a.failures) / a.attempts : 0;
  const double rate_b = b.attempts ? static_cast<double>(b.failures) / b.attempts : 0;
  v.evidence["error_rate"] = json::object{{look.control_arm, rate_a}, {look.candidate_arm, rate_b}};
  if (guard.max_error_rate > 0 && b.attempts >= 20 && rate_b > guard.max_error_rate) {
    // Binomial variance with a floor of one event, so an arm without failures still has one.
    const double pa = std::max(rate_a, 1.0 / std::max<int64_t>(a.attempts, 1));
    const double pb = std::clamp(rate_b, 1.0 / b.attempts, 1.0 - 1.0 / b.attempts);
    const double var = pb * (1 - pb) / b.attempts + (a.attempts ? pa * (1 - pa) / a.attempts : pb * (1 - pb) / b.attempts);
    auto seq = stats::MixtureSequentialTest(rate_b - rate_a, var, a.attempts + b.attempts, alpha);
    if (seq.ok() && seq->p_value < alpha) {
      v.action = Action::kRollback;
      v.reason = StrCat("guardrail error_rate: ", look.candidate_arm, " failed ", rate_b * 100, "% of ", b.attempts,
                        " requests (max ", guard.max_error_rate * 100, "%, control ", rate_a * 100,
                        "%; sequential p = ", seq->p_value, ")");
      v.evidence["guardrail"] = "error_rate";
      v.evidence["sequential_p_value"] = seq->p_value;
      return v;
    }
  }
  // Guardrail 2: p99 latency. "p99 above the limit" means more than 1% of the candidate's
  // requests took longer than it; the share certainly slower (past the first histogram bound at
  // or above the limit) is tested against 1% with the same sequential test.
  const double p99_b = P99Ms(b);
  v.evidence["p99_latency_ms"] = json::object{{look.control_arm, P99Ms(a)}, {look.candidate_arm, p99_b}};
  if (guard.max_p99_latency_ms > 0 && b.attempts >= 100 && !b.latency_buckets.empty()) {
    int64_t within = b.latency_buckets.back().second;
    for (const auto& [le, cumulative] : b.latency_buckets) {
      if (le >= guard.max_p99_latency_ms) {
        within = cumulative;
        break;
      }
    }
    const double n = static_cast<double>(b.latency_buckets.back().second);
    const double slow = n > 0 ? static_cast<double>(n - within) / n : 0;
    const double share = std::clamp(slow, 1.0 / n, 1.0 - 1.0 / n);  // keeps the variance positive
    auto seq = stats::MixtureSequentialTest(slow - 0.01, share * (1 - share) / n, static_cast<int64_t>(n), alpha);
    v.evidence["slow_share"] = slow;
    if (slow > 0.01 && seq.ok() && seq->p_value < alpha) {
      v.action = Action::kRollback;
      v.reason = StrCat("guardrail p99 latency: ", slow * 100, "% of ", look.candidate_arm, "'s ", b.attempts,
                        " requests took longer than ", guard.max_p99_latency_ms, " ms (at most 1% may; sequential p = ",
                        seq->p_value, ")");
      v.evidence["guardrail"] = "p99_latency";
      v.evidence["sequential_p_value"] = seq->p_value;
      return v;
    }
  }
  // Guardrail 3 and the decision: the primary metric under the sequential test.
  std::string primary;
  if (auto* d = report.if_contains("decision"); d && d->is_object()) {
    if (auto* m = d->as_object().if_contains("metric"); m && m->is_string()) primary = std::string(m->as_string());
  }
  const json::object* cmp = primary.empty() ? nullptr : Comparison(report, primary, look.candidate_arm);
  double seq_p = 1, diff = 0;
  if (cmp) {
    seq_p = Num(cmp->if_contains("sequential_p_value"), 1);
    diff = Num(cmp->if_contains("diff"), 0);
    v.evidence["metric"] = primary;
    v.evidence["test"] = cmp->contains("test") ? cmp->at("test") : json::value("two_proportion_z");
    for (const char* key : {"diff", "diff_ci", "lift", "lift_ci", "p_value", "sequential_p_value", "chance_to_beat"}) {
      if (auto* x = cmp->if_contains(key)) v.evidence[key] = *x;
    }
    if (seq_p < alpha && diff < 0) {
      v.action = Action::kRollback;
      v.reason = StrCat("guardrail ", primary, ": ", look.candidate_arm, " is significantly worse than ",
                        look.control_arm, " (diff ", diff, ", sequential p = ", seq_p, ")");
      v.evidence["guardrail"] = primary;
      return v;
    }
  }
  bool srm = false;
  if (auto* s = report.if_contains("srm"); s && s->is_object()) {
    if (auto* m = s->as_object().if_contains("mismatch"); m && m->is_bool()) srm = m->as_bool();
  }
  const bool step_done = look.step_elapsed_us >= step.min_duration_us && units_a + units_b >= step.min_units;
  const bool last = look.step + 1 == model.plan.size();
  if (look.total_elapsed_us >= model.max_duration_us) {
    v.action = Action::kInconclusive;
    v.reason = srm ? StrCat("maximum duration reached with a sample ratio mismatch in step ", step.name,
                            "; the champion stays")
                   : StrCat("maximum duration reached without a significant difference on ",
                            primary.empty() ? "the primary metric" : primary, " (sequential p = ", seq_p,
                            "); the champion stays");
    return v;
  }
  if (!step_done) {
    v.reason = StrCat("step ", step.name, " (", step.percent, "%): waiting for its minimum duration and ", step.min_units,
                      " units (", units_a + units_b, " so far)");
    return v;
  }
  if (!last) {
    v.action = Action::kAdvance;
    v.reason = StrCat("step ", step.name, " passed its guardrails");
    return v;
  }
  if (srm) {
    v.reason = "sample ratio mismatch: not promoting while the split is not what was configured";
    return v;
  }
  if (cmp && seq_p < alpha && diff > 0) {
    v.action = Action::kPromote;
    v.reason = StrCat(look.candidate_arm, " beats ", look.control_arm, " on ", primary, " (diff ", diff,
                      ", sequential p = ", seq_p, ") after the final step");
    return v;
  }
  v.reason = StrCat("final step: no significant difference on ", primary.empty() ? "the primary metric" : primary,
                    " yet (sequential p = ", seq_p, ")");
  return v;
}

}  // namespace abgate::control
