// The holdout comparison's JSON and text: the two-arm report Analyze made, shown as "everyone
// else vs the holdout" per metric, without a launch decision.
#include <string>

#include <boost/json.hpp>

#include "analysis/holdout.h"
#include "common/human.h"
#include "common/strings.h"

namespace abgate::analysis {
namespace {

namespace json = boost::json;

json::array Pair(const Interval& i) { return json::array{i.low, i.high}; }

json::object Group(const MetricSummary* m) {
  json::object o;
  if (!m) return o;
  o["n"] = m->n;
  if (m->mean) o["mean"] = *m->mean;
  if (m->ci) o["ci"] = Pair(*m->ci);
  if (!m->insufficient_data.empty()) o["insufficient_data"] = m->insufficient_data;
  return o;
}

std::string Signed(double x) { return StrCat(x >= 0 ? "+" : "", Human(x, 3)); }

}  // namespace

json::object HoldoutToJson(const Report& r, const std::string& scope, double percent) {
  json::object out;
  out["analysis"] = "holdout";
  out["scope"] = scope;
  if (percent > 0) out["holdout_percent"] = percent;
  out["alpha"] = r.alpha;
  json::array groups;
  for (const auto& a : r.arms) groups.push_back(json::object{{"group", a.arm}, {"units", a.units}, {"exposures", a.exposures}});
  out["groups"] = std::move(groups);
  const ArmReport* held = r.Arm(kHoldoutArm);
  const ArmReport* rest = r.Arm(kEveryoneElseArm);
  json::array metrics;
  for (const auto& name : r.metrics) {
    json::object m;
    m["metric"] = name;
    m["type"] = r.KindOf(name) == MetricKind::kBinary ? "binary" : "continuous";
    m[kHoldoutArm] = Group(held ? held->Metric(name) : nullptr);
    m[kEveryoneElseArm] = Group(rest ? rest->Metric(name) : nullptr);
    if (const ComparisonReport* c = r.Comparison(name, kEveryoneElseArm)) {
      if (!c->insufficient_data.empty()) {
        m["insufficient_data"] = c->insufficient_data;
      } else {
        m["test"] = c->test;
        m["diff"] = c->diff;
        m["diff_ci"] = Pair(c->diff_ci);
        m["lift"] = c->lift ? json::value(*c->lift) : json::value(nullptr);
        if (c->lift_ci) m["lift_ci"] = Pair(*c->lift_ci);
        m["p_value"] = c->p_value;
        if (c->sequential_p_value) m["sequential_p_value"] = *c->sequential_p_value;
        if (c->sequential_ci) m["sequential_ci"] = Pair(*c->sequential_ci);
        // The holdout is watched for as long as it runs: significance by the always-valid p.
        m["significant"] = c->sequential_p_value && *c->sequential_p_value < r.alpha;
      }
    }
    metrics.push_back(std::move(m));
  }
  out["metrics"] = std::move(metrics);
  json::object srm{{"checked", r.srm.checked}, {"observed", json::value_from(r.srm.observed)}};
  if (r.srm.checked) {
    srm["p_value"] = r.srm.p_value;
    srm["mismatch"] = r.srm.mismatch;
  } else {
    srm["reason"] = percent > 0 ? r.srm.reason : "holdout percent unknown; give --config";
  }
  out["srm"] = std::move(srm);
  out["units_in_both"] = r.multiple_exposure_units;
  if (r.outcomes) {
    out["outcomes"] = json::object{{"attributed", r.outcomes->attributed},
                                   {"before_exposure", r.outcomes->before_exposure},
                                   {"after_window", r.outcomes->after_window},
                                   {"unknown_unit", r.outcomes->unknown_unit},
                                   {"duplicates", r.outcomes->duplicates}};
  }
  return out;
}

std::string RenderHoldoutText(const Report& r, const std::string& scope, double percent) {
  const ArmReport* held = r.Arm(kHoldoutArm);
  const ArmReport* rest = r.Arm(kEveryoneElseArm);
  std::string out = StrCat("holdout analysis of ", scope, percent > 0 ? StrCat(" (holdout ", Human(percent), "% of units)") : "",
                           ": everyone else vs the holdout, the cumulative effect of every model launched while it ran\n");
  out += StrCat("units: holdout ", WithThousands(held ? held->units : 0), ", everyone else ",
                WithThousands(rest ? rest->units : 0), "; in both (left out): ", r.multiple_exposure_units, "\n");
  if (r.outcomes && r.outcomes->duplicates > 0) {
    out += StrCat("outcomes posted to more than one experiment, counted once: ", WithThousands(r.outcomes->duplicates),
                  "\n");
  }
  out += "\n";
  for (const auto& name : r.metrics) {
    const bool rate = r.KindOf(name) == MetricKind::kBinary;
    auto fmt = [&](const ArmReport* a) -> std::string {
      const MetricSummary* m = a ? a->Metric(name) : nullptr;
      if (!m || !m->mean) return "no data";
      auto f = [&](double x) { return rate ? HumanPercent(x) : Human(x); };
      return StrCat(f(*m->mean), m->ci ? StrCat(" [", f(m->ci->low), ", ", f(m->ci->high), "]") : "");
    };
    out += StrCat(name, ": holdout ", fmt(held), ", everyone else ", fmt(rest), "\n");
    const ComparisonReport* c = r.Comparison(name, kEveryoneElseArm);
    if (!c || !c->insufficient_data.empty()) {
      out += StrCat("  not compared: ", c ? c->insufficient_data : std::string("no data"), "\n");
      continue;
    }
    out += StrCat("  lift ", c->lift ? StrCat(Signed(100 * *c->lift), "%") : std::string("-"),
                  c->lift_ci ? StrCat(" [", Signed(100 * c->lift_ci->low), ", ", Signed(100 * c->lift_ci->high), "]") : "",
                  ", ", HumanPIs(c->p_value), ", always-valid ",
                  c->sequential_p_value ? HumanPIs(*c->sequential_p_value) : std::string("p -"),
                  c->sequential_p_value && *c->sequential_p_value < r.alpha ? "  (significant)" : "", "\n");
  }
  if (r.srm.checked) {
    out += StrCat("\nsplit: ", r.srm.mismatch ? "MISMATCH" : "ok", " against ", Human(percent), "% held out (",
                  HumanPIs(r.srm.p_value), ")\n");
  }
  return out;
}

}  // namespace abgate::analysis
