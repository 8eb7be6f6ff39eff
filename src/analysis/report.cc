#include "analysis/report.h"

#include <algorithm>
#include <cmath>

#include <boost/json.hpp>

#include "common/strings.h"

namespace abgate::analysis {

namespace json = boost::json;

const MetricSummary* ArmReport::Metric(std::string_view name) const {
  for (const auto& m : metrics) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

const ArmReport* Report::Arm(std::string_view name) const {
  for (const auto& a : arms) {
    if (a.arm == name) return &a;
  }
  return nullptr;
}

const ComparisonReport* Report::Comparison(std::string_view metric, std::string_view treatment) const {
  for (const auto& c : comparisons) {
    if (c.metric == metric && c.treatment == treatment) return &c;
  }
  return nullptr;
}

MetricKind Report::KindOf(std::string_view metric) const {
  for (const auto& a : arms) {
    if (const auto* m = a.Metric(metric)) return m->kind;
  }
  return MetricKind::kBinary;
}

std::string_view FamilyName(Family f) { return f == Family::kPrimary ? "primary" : "secondary"; }

std::string_view GuardrailStatusName(GuardrailResult::Status s) {
  switch (s) {
    case GuardrailResult::Status::kPass: return "pass";
    case GuardrailResult::Status::kFail: return "fail";
    case GuardrailResult::Status::kNotChecked: return "not_checked";
  }
  return "not_checked";
}

namespace {

json::array Pair(const Interval& i) { return json::array{i.low, i.high}; }

json::object ToJson(const ComparisonReport& c) {
  json::object o;
  o["metric"] = c.metric;
  o["control"] = c.control;
  o["treatment"] = c.treatment;
  o["family"] = FamilyName(c.family);
  if (!c.insufficient_data.empty()) {
    o["insufficient_data"] = c.insufficient_data;
    o["significant"] = false;
    return o;
  }
  o["test"] = c.test;
  o["diff"] = c.diff;
  o["diff_ci"] = Pair(c.diff_ci);
  if (c.metric != "auc") {
    if (c.lift) {
      o["lift"] = *c.lift;
      o["lift_ci"] = Pair(*c.lift_ci);
    } else {
      o["lift"] = nullptr;
    }
  }
  o["statistic"] = c.statistic;
  if (c.df > 0) o["df"] = c.df;
  o["p_value"] = c.p_value;
  o["p_value_adjusted"] = c.p_value_adjusted;
  o["family_size"] = c.family_size;
  if (c.sequential_p_value) {
    o["sequential_p_value"] = *c.sequential_p_value;
    if (c.sequential_ci) o["sequential_ci"] = Pair(*c.sequential_ci);
    if (c.sequential_p_value_adjusted) o["sequential_p_value_adjusted"] = *c.sequential_p_value_adjusted;
    o["sequential_family_size"] = c.sequential_family_size;
  }
  if (c.chance_to_beat) o["chance_to_beat"] = *c.chance_to_beat;
  if (c.cuped) {
    const CupedReport& k = *c.cuped;
    json::object cu{{"covariate", k.covariate}, {"applied", k.applied}};
    if (k.applied) {
      cu["theta"] = k.theta;
      cu["variance_reduction"] = k.variance_reduction;
      json::object raw{{"diff", k.unadjusted_diff}, {"diff_ci", Pair(k.unadjusted_diff_ci)}, {"p_value", k.unadjusted_p_value}};
      raw["lift"] = k.unadjusted_lift ? json::value(*k.unadjusted_lift) : json::value(nullptr);
      cu["unadjusted"] = std::move(raw);
    } else {
      cu["reason"] = k.not_applied;
    }
    o["cuped"] = std::move(cu);
  }
  o["significant"] = c.significant;
  return o;
}

json::object ToJson(const GuardrailResult& g) {
  json::object o{{"name", g.name},
                 {"arm", g.arm},
                 {"status", GuardrailStatusName(g.status)},
                 {"observed", g.observed},
                 {"limit", g.limit},
                 {"one_sided", true}};
  if (g.sequential_p_value) o["sequential_p_value"] = *g.sequential_p_value;
  o["detail"] = g.detail;
  return o;
}

// A non-throwing reader of one JSON object: every accessor records the first error (with the
// field's path) and returns a default, so a reader is a sequence of calls and one check.
class Reader {
 public:
  Reader(const json::value* v, std::string path, absl::Status* status) : path_(std::move(path)), status_(status) {
    if (v && v->is_object()) {
      o_ = &v->as_object();
    } else {
      Fail("", "an object");
    }
  }
  bool ok() const { return o_ != nullptr && status_->ok(); }
  const json::value* Find(std::string_view key) const { return o_ ? o_->if_contains(key) : nullptr; }
  bool Has(std::string_view key) const {
    const auto* v = Find(key);
    return v && !v->is_null();
  }
  std::string Str(std::string_view key, bool required = true) {
    const auto* v = Find(key);
    if (v && v->is_string()) return std::string(v->as_string());
    if (required || (v && !v->is_null())) Fail(key, "a string");
    return {};
  }
  double Num(std::string_view key, bool required = true, double fallback = 0) {
    const auto* v = Find(key);
    if (v && v->is_number()) {
      // Our writer prints a non-finite double as a string ("NaN"), never as a number, so a
      // number that is not finite (Boost.JSON reads 1e400 as inf, 0e400 as NaN) is a peer's error.
      if (const double d = v->to_number<double>(); std::isfinite(d)) return d;
      Fail(key, "a finite number");
      return fallback;
    }
    if (required || (v && !v->is_null())) Fail(key, "a number");
    return fallback;
  }
  std::optional<double> OptNum(std::string_view key) {
    if (!Has(key)) return std::nullopt;
    return Num(key);
  }
  int64_t Int(std::string_view key, bool required = true) {
    const auto* v = Find(key);
    if (v && v->is_int64()) return v->as_int64();
    if (v && v->is_uint64() && v->as_uint64() <= static_cast<uint64_t>(INT64_MAX)) return static_cast<int64_t>(v->as_uint64());
    if (v && v->is_double() && std::trunc(v->as_double()) == v->as_double() && std::fabs(v->as_double()) < 9e18) {
      return static_cast<int64_t>(v->as_double());
    }
    if (required || (v && !v->is_null())) Fail(key, "an integer");
    return 0;
  }
  bool Bool(std::string_view key, bool required = true) {
    const auto* v = Find(key);
    if (v && v->is_bool()) return v->as_bool();
    if (required || (v && !v->is_null())) Fail(key, "true or false");
    return false;
  }
  std::optional<Interval> OptInterval(std::string_view key) {
    if (!Has(key)) return std::nullopt;
    const auto* v = Find(key);
    if (!v->is_array() || v->as_array().size() != 2 || !v->as_array()[0].is_number() ||
        !v->as_array()[1].is_number()) {
      Fail(key, "a [low, high] pair of numbers");
      return std::nullopt;
    }
    const Interval i{v->as_array()[0].to_number<double>(), v->as_array()[1].to_number<double>()};
    if (!std::isfinite(i.low) || !std::isfinite(i.high)) {
      Fail(key, "a [low, high] pair of finite numbers");
      return std::nullopt;
    }
    return i;
  }
  Interval Pair(std::string_view key) {
    auto i = OptInterval(key);
    if (!i) Fail(key, "a [low, high] pair of numbers");
    return i.value_or(Interval{});
  }
  // Elements of an array field (empty when absent and not required).
  const json::array* Array(std::string_view key, bool required = true) {
    const auto* v = Find(key);
    if (v && v->is_array()) return &v->as_array();
    if (required || (v && !v->is_null())) Fail(key, "an array");
    return nullptr;
  }
  std::string Path(std::string_view key) const { return key.empty() ? path_ : StrCat(path_, ".", key); }

 private:
  void Fail(std::string_view key, std::string_view what) {
    if (status_->ok()) *status_ = absl::InvalidArgumentError(StrCat("analysis report: ", Path(key), " must be ", what));
  }
  const json::object* o_ = nullptr;
  std::string path_;
  absl::Status* status_;
};

ComparisonReport ComparisonFromJson(const json::value& v, const std::string& path, absl::Status* status) {
  Reader r(&v, path, status);
  ComparisonReport c;
  if (!r.ok()) return c;
  c.metric = r.Str("metric");
  c.control = r.Str("control");
  c.treatment = r.Str("treatment");
  c.family = r.Str("family", false) == "primary" ? Family::kPrimary : Family::kSecondary;
  c.insufficient_data = r.Str("insufficient_data", false);
  c.significant = r.Bool("significant", false);
  if (!c.insufficient_data.empty()) return c;
  c.test = r.Str("test");
  c.diff = r.Num("diff");
  c.diff_ci = r.Pair("diff_ci");
  c.lift = r.OptNum("lift");
  if (c.lift) c.lift_ci = r.Pair("lift_ci");
  c.statistic = r.Num("statistic", false);
  c.df = r.Num("df", false);
  c.p_value = r.Num("p_value");
  c.p_value_adjusted = r.Num("p_value_adjusted", false, c.p_value);
  c.family_size = static_cast<int>(r.Int("family_size", false));
  c.sequential_p_value = r.OptNum("sequential_p_value");
  c.sequential_ci = r.OptInterval("sequential_ci");
  c.sequential_p_value_adjusted = r.OptNum("sequential_p_value_adjusted");
  c.sequential_family_size = static_cast<int>(r.Int("sequential_family_size", false));
  c.chance_to_beat = r.OptNum("chance_to_beat");
  if (const auto* cu = r.Find("cuped"); cu && !cu->is_null()) {
    Reader k(cu, r.Path("cuped"), status);
    if (!k.ok()) return c;
    CupedReport out;
    out.covariate = k.Str("covariate");
    out.applied = k.Bool("applied", false);
    out.not_applied = k.Str("reason", false);
    if (out.applied) {
      out.theta = k.Num("theta");
      out.variance_reduction = k.Num("variance_reduction");
      Reader raw(k.Find("unadjusted"), k.Path("unadjusted"), status);
      if (!raw.ok()) return c;
      out.unadjusted_diff = raw.Num("diff");
      out.unadjusted_diff_ci = raw.Pair("diff_ci");
      out.unadjusted_lift = raw.OptNum("lift");
      out.unadjusted_p_value = raw.Num("p_value");
    }
    c.cuped = std::move(out);
  }
  return c;
}

GuardrailResult GuardrailFromJson(const json::value& v, const std::string& path, absl::Status* status) {
  Reader r(&v, path, status);
  GuardrailResult g;
  if (!r.ok()) return g;
  g.name = r.Str("name");
  g.arm = r.Str("arm");
  const std::string s = r.Str("status");
  g.status = s == "pass"   ? GuardrailResult::Status::kPass
             : s == "fail" ? GuardrailResult::Status::kFail
                           : GuardrailResult::Status::kNotChecked;
  g.observed = r.Num("observed", false);
  g.limit = r.Num("limit", false);
  g.sequential_p_value = r.OptNum("sequential_p_value");
  g.detail = r.Str("detail", false);
  return g;
}

Decision DecisionFromReader(const json::value& v, const std::string& path, absl::Status* status) {
  Reader r(&v, path, status);
  Decision d;
  if (!r.ok()) return d;
  d.action = r.Str("action");
  if (r.Has("winner")) d.winner = r.Str("winner");
  d.metric = r.Str("metric");
  d.reason = r.Str("reason");
  d.srm_mismatch = r.Bool("srm_mismatch", false);
  if (const auto* e = r.Find("evidence"); e && !e->is_null()) {
    d.evidence = ComparisonFromJson(*e, r.Path("evidence"), status);
  }
  if (const auto* g = r.Array("guardrails", false)) {
    for (size_t i = 0; i < g->size(); ++i) {
      d.guardrails.push_back(GuardrailFromJson((*g)[i], StrCat(r.Path("guardrails"), "[", i, "]"), status));
    }
  }
  if (const auto* f = r.Array("failed_arms", false)) {
    for (const auto& x : *f) {
      if (x.is_string()) d.failed_arms.emplace_back(x.as_string());
    }
  }
  return d;
}

ShadowSummary ShadowFromReader(const json::value& v, const std::string& path, absl::Status* status) {
  Reader r(&v, path, status);
  ShadowSummary s;
  if (!r.ok()) return s;
  s.arm = r.Str("arm");
  s.shadow_arm = r.Str("shadow_arm");
  s.requests = r.Int("requests");
  s.shadow_failures = r.Int("shadow_failures", false);
  s.compared = r.Int("compared", false);
  s.disagreement = r.OptNum("disagreement");
  s.mean_abs_score_diff = r.OptNum("mean_abs_score_diff");
  s.score_correlation = r.OptNum("score_correlation");
  if (const auto* lat = r.Find("latency_ms"); lat && !lat->is_null()) {
    Reader lr(lat, r.Path("latency_ms"), status);
    for (const auto& [side, out] : {std::pair{"primary", &s.primary_latency_ms}, std::pair{"shadow", &s.shadow_latency_ms}}) {
      if (!lr.ok()) break;
      Reader sr(lr.Find(side), lr.Path(side), status);
      if (!sr.ok()) break;
      out->mean = sr.Num("mean", false);
      out->p50 = sr.Num("p50", false);
      out->p99 = sr.Num("p99", false);
    }
  }
  return s;
}

BanditReport BanditFromReader(const json::value& v, const std::string& path, absl::Status* status) {
  Reader r(&v, path, status);
  BanditReport b;
  if (!r.ok()) return b;
  b.metric = r.Str("metric");
  b.floor = r.Num("floor", false);
  b.without_probability = r.Int("without_probability", false);
  b.note = r.Str("note", false);
  if (const auto* arms = r.Array("arms")) {
    for (size_t i = 0; i < arms->size() && status->ok(); ++i) {
      Reader ar(&(*arms)[i], StrCat(r.Path("arms"), "[", i, "]"), status);
      if (!ar.ok()) break;
      BanditArmReport a;
      a.arm = ar.Str("arm");
      a.requests = ar.Int("requests");
      a.successes = ar.Int("successes");
      a.weight = ar.Num("weight", false);
      a.prob_best = ar.Num("prob_best");
      a.ipw_mean = ar.OptNum("ipw_mean");
      a.ipw_ci = ar.OptInterval("ipw_ci");
      a.insufficient_data = ar.Str("insufficient_data", false);
      b.arms.push_back(std::move(a));
    }
  }
  return b;
}

}  // namespace

json::object ToJson(const BanditReport& b) {
  json::array arms;
  for (const auto& a : b.arms) {
    json::object o{{"arm", a.arm},           {"requests", a.requests}, {"successes", a.successes},
                   {"weight", a.weight},     {"prob_best", a.prob_best}};
    if (a.ipw_mean) o["ipw_mean"] = *a.ipw_mean;
    if (a.ipw_ci) o["ipw_ci"] = Pair(*a.ipw_ci);
    if (!a.insufficient_data.empty()) o["insufficient_data"] = a.insufficient_data;
    arms.push_back(std::move(o));
  }
  return json::object{{"metric", b.metric},
                      {"floor", b.floor},
                      {"arms", std::move(arms)},
                      {"without_probability", b.without_probability},
                      {"note", b.note}};
}

json::object ToJson(const ShadowSummary& s) {
  json::object o{{"arm", s.arm},
                 {"shadow_arm", s.shadow_arm},
                 {"requests", s.requests},
                 {"shadow_failures", s.shadow_failures},
                 {"compared", s.compared}};
  if (s.disagreement) o["disagreement"] = *s.disagreement;
  if (s.mean_abs_score_diff) o["mean_abs_score_diff"] = *s.mean_abs_score_diff;
  if (s.score_correlation) o["score_correlation"] = *s.score_correlation;
  auto latency = [](const ShadowSummary::Latency& l) {
    return json::object{{"mean", l.mean}, {"p50", l.p50}, {"p99", l.p99}};
  };
  o["latency_ms"] = json::object{{"primary", latency(s.primary_latency_ms)}, {"shadow", latency(s.shadow_latency_ms)}};
  return o;
}

absl::StatusOr<ShadowSummary> ShadowFromJson(const json::value& v) {
  absl::Status status;
  ShadowSummary s = ShadowFromReader(v, "shadow", &status);
  if (!status.ok()) return status;
  return s;
}

json::object ToJson(const Decision& d) {
  json::object o;
  o["metric"] = d.metric;
  o["action"] = d.action;
  o["winner"] = d.winner ? json::value(*d.winner) : json::value(nullptr);
  o["reason"] = d.reason;
  o["srm_mismatch"] = d.srm_mismatch;
  if (d.evidence) {
    json::object e = ToJson(*d.evidence);
    o["evidence"] = std::move(e);
    // The decision's own p-values, explicit for readers that look only here.
    if (d.evidence->sequential_p_value) o["sequential_p_value"] = *d.evidence->sequential_p_value;
    if (d.evidence->sequential_p_value_adjusted) {
      o["sequential_p_value_adjusted"] = *d.evidence->sequential_p_value_adjusted;
    }
  } else {
    o["evidence"] = nullptr;
  }
  json::array g;
  for (const auto& x : d.guardrails) g.push_back(ToJson(x));
  o["guardrails"] = std::move(g);
  json::array failed;
  for (const auto& a : d.failed_arms) failed.push_back(json::value(a));
  o["failed_arms"] = std::move(failed);
  return o;
}

absl::StatusOr<Decision> DecisionFromJson(const json::value& v) {
  absl::Status status;
  Decision d = DecisionFromReader(v, "decision", &status);
  if (!status.ok()) return status;
  return d;
}

json::object ToJson(const Report& r) {
  json::object report;
  report["experiment"] = r.experiment;
  report["unit"] = r.unit;
  report["control"] = r.control;
  report["alpha"] = r.alpha;
  report["primary_metric"] = r.primary_metric;
  json::array metric_names;
  for (const auto& m : r.metrics) metric_names.push_back(json::value(m));
  report["metrics"] = std::move(metric_names);
  if (!r.window.empty()) report["window"] = r.window;
  json::array arms;
  for (const auto& a : r.arms) {
    json::object o;
    o["arm"] = a.arm;
    o["model_version"] = a.model_version;
    if (a.versions.size() > 1) {  // an arm that more than one version served (an alias that moved)
      json::array vs;
      for (const auto& v : a.versions) vs.push_back(json::object{{"version", v.version}, {"exposures", v.exposures}});
      o["versions"] = std::move(vs);
    }
    o["units"] = a.units;
    o["exposures"] = a.exposures;
    json::object metrics;
    for (const auto& m : a.metrics) {
      json::object mo;
      mo["type"] = m.kind == MetricKind::kBinary ? "binary" : "continuous";
      mo["n"] = m.n;
      if (!m.insufficient_data.empty()) {
        mo["insufficient_data"] = m.insufficient_data;
      } else {
        if (m.mean) mo["mean"] = *m.mean;
        if (m.ci) mo["ci"] = Pair(*m.ci);
      }
      metrics[m.name] = std::move(mo);
    }
    if (a.quality) {
      const auto& q = *a.quality;
      json::object auc;
      if (q.auc) {
        auc["value"] = *q.auc;
        auc["ci"] = Pair(q.auc_ci.value_or(Interval{}));
        auc["n"] = q.n;
      } else {
        auc["insufficient_data"] = q.auc_insufficient_data;
      }
      metrics["auc"] = std::move(auc);
      if (q.log_loss) metrics["log_loss"] = json::object{{"value", *q.log_loss}};
      if (q.calibration_error) {
        metrics["calibration_error"] = json::object{{"value", *q.calibration_error}, {"bins", q.calibration_bins}};
      }
    }
    o["metrics"] = std::move(metrics);
    arms.push_back(std::move(o));
  }
  report["arms"] = std::move(arms);
  json::array comparisons;
  for (const auto& c : r.comparisons) comparisons.push_back(ToJson(c));
  report["comparisons"] = std::move(comparisons);
  report["adjustment"] = r.adjustment;
  if (r.arms.size() > 2) {
    json::array chi;
    for (const auto& c : r.chi_squared) {
      json::object o{{"metric", c.metric}};
      if (!c.insufficient_data.empty()) {
        o["insufficient_data"] = c.insufficient_data;
      } else {
        o["statistic"] = c.statistic;
        o["df"] = c.df;
        o["p_value"] = c.p_value;
      }
      chi.push_back(std::move(o));
    }
    report["chi_squared"] = std::move(chi);
  }
  json::object srm;
  srm["observed"] = json::value_from(r.srm.observed);
  srm["checked"] = r.srm.checked;
  if (!r.srm.checked) {
    srm["reason"] = r.srm.reason;
  } else {
    srm["expected_share"] = json::value_from(r.srm.expected_share);
    srm["chi2"] = r.srm.chi2;
    srm["p_value"] = r.srm.p_value;
    srm["mismatch"] = r.srm.mismatch;
    srm["threshold"] = r.srm.threshold;
    if (!r.srm.note.empty()) srm["note"] = r.srm.note;
  }
  if (!r.srm.period.empty()) srm["period"] = r.srm.period;
  report["srm"] = std::move(srm);
  report["multiple_exposure_units"] = r.multiple_exposure_units;
  if (r.outcomes) {
    report["outcomes"] = json::object{{"attributed", r.outcomes->attributed},
                                      {"unattributed", json::object{{"before_exposure", r.outcomes->before_exposure},
                                                                    {"after_window", r.outcomes->after_window},
                                                                    {"unknown_unit", r.outcomes->unknown_unit}}}};
    if (r.outcomes->covariate > 0) report["outcomes"].as_object()["covariate"] = r.outcomes->covariate;
  }
  report["maturing_units"] = r.maturing_units;
  report["decision"] = ToJson(r.decision);
  json::array timeline;
  for (const auto& s : r.timeline) {
    json::array points;
    for (const auto& p : s.points) {
      points.push_back(json::object{{"units", p.units}, {"ts_us", p.ts_us}, {"lift", p.lift}, {"ci", Pair(p.ci)}});
    }
    timeline.push_back(json::object{{"treatment", s.treatment}, {"metric", s.metric}, {"points", std::move(points)}});
  }
  report["timeline"] = std::move(timeline);
  if (r.shadow) report["shadow"] = ToJson(*r.shadow);
  if (!r.shadow_evaluation.empty()) {
    json::array evaluations;
    for (const auto& e : r.shadow_evaluation) {
      json::object o{{"arm", e.arm}, {"shadow_arm", e.shadow_arm}, {"requests", e.requests}, {"positives", e.positives}};
      if (!e.insufficient_data.empty()) {
        o["insufficient_data"] = e.insufficient_data;
      } else {
        o["test"] = "paired_delong";
        o["auc"] = json::object{{"served", e.auc}, {"shadow", e.shadow_auc}, {"diff", e.auc_diff},
                                {"diff_ci", Pair(e.auc_diff_ci)}, {"p_value", e.auc_p_value}};
        o["log_loss"] = json::object{{"served", e.log_loss}, {"shadow", e.shadow_log_loss}, {"diff", e.log_loss_diff},
                                     {"diff_ci", Pair(e.log_loss_diff_ci)}, {"p_value", e.log_loss_p_value}};
        o["shadow_worse"] = e.shadow_worse;
        o["shadow_better"] = e.shadow_better;
      }
      evaluations.push_back(std::move(o));
    }
    report["shadow_evaluation"] = std::move(evaluations);
  }
  if (r.bandit) report["bandit"] = ToJson(*r.bandit);
  if (const auto& c = r.conclusion) {
    report["conclusion"] = json::object{{"action", c->action},     {"winner", c->winner},
                                        {"winner_version", c->winner_version}, {"tested_control", c->tested_control},
                                        {"at_us", c->at_us},       {"reason", c->reason}};
  }
  return report;
}

absl::StatusOr<Report> ReportFromJson(const json::value& v) {
  absl::Status status;
  Reader r(&v, "report", &status);
  if (!r.ok()) return status;
  Report out;
  out.experiment = r.Str("experiment");
  out.unit = r.Str("unit", false);
  if (out.unit.empty()) out.unit = "user";
  out.control = r.Str("control");
  out.alpha = r.Num("alpha", false, 0.05);
  out.adjustment = r.Str("adjustment", false);
  out.primary_metric = r.Str("primary_metric", false);
  out.window = r.Str("window", false);
  out.multiple_exposure_units = r.Int("multiple_exposure_units", false);
  out.maturing_units = r.Int("maturing_units", false);
  if (const auto* names = r.Array("metrics", false)) {
    for (const auto& n : *names) {
      if (n.is_string()) out.metrics.emplace_back(n.as_string());
    }
  }
  if (const auto* arms = r.Array("arms")) {
    for (size_t i = 0; i < arms->size() && status.ok(); ++i) {
      Reader a(&(*arms)[i], StrCat("report.arms[", i, "]"), &status);
      if (!a.ok()) break;
      ArmReport arm;
      arm.arm = a.Str("arm");
      arm.model_version = a.Str("model_version", false);
      arm.units = a.Int("units");
      arm.exposures = a.Int("exposures", false);
      if (const auto* vs = a.Array("versions", false)) {
        for (size_t j = 0; j < vs->size(); ++j) {
          Reader vr(&(*vs)[j], StrCat(a.Path("versions"), "[", j, "]"), &status);
          if (!vr.ok()) break;
          arm.versions.push_back({vr.Str("version"), vr.Int("exposures", false)});
        }
      }
      if (const auto* m = a.Find("metrics"); m && m->is_object()) {
        for (const auto& [key, value] : m->as_object()) {
          const std::string name(key.data(), key.size());
          Reader mr(&value, a.Path(StrCat("metrics.", name)), &status);
          if (!mr.ok()) break;
          if (name == "auc" || name == "log_loss" || name == "calibration_error") {
            if (!arm.quality) arm.quality.emplace();
            auto& q = *arm.quality;
            if (name == "auc") {
              q.auc = mr.OptNum("value");
              q.auc_ci = mr.OptInterval("ci");
              q.n = mr.Int("n", false);
              q.auc_insufficient_data = mr.Str("insufficient_data", false);
            } else if (name == "log_loss") {
              q.log_loss = mr.OptNum("value");
            } else {
              q.calibration_error = mr.OptNum("value");
              q.calibration_bins = static_cast<int>(mr.Int("bins", false));
            }
            continue;
          }
          MetricSummary s;
          s.name = name;
          s.kind = mr.Str("type", false) == "continuous" ? MetricKind::kContinuous : MetricKind::kBinary;
          s.n = mr.Int("n", false);
          s.insufficient_data = mr.Str("insufficient_data", false);
          s.mean = mr.OptNum("mean");
          s.ci = mr.OptInterval("ci");
          arm.metrics.push_back(std::move(s));
        }
      } else if (a.Find("metrics")) {
        a.Array("metrics");  // records "must be an object"-like error
      }
      out.arms.push_back(std::move(arm));
    }
  }
  if (out.metrics.empty() && !out.arms.empty()) {
    for (const auto& m : out.arms.front().metrics) out.metrics.push_back(m.name);
  }
  if (const auto* list = r.Array("comparisons")) {
    for (size_t i = 0; i < list->size() && status.ok(); ++i) {
      out.comparisons.push_back(ComparisonFromJson((*list)[i], StrCat("report.comparisons[", i, "]"), &status));
    }
  }
  if (const auto* chi = r.Array("chi_squared", false)) {
    for (size_t i = 0; i < chi->size() && status.ok(); ++i) {
      Reader c(&(*chi)[i], StrCat("report.chi_squared[", i, "]"), &status);
      if (!c.ok()) break;
      ChiSquaredReport x;
      x.metric = c.Str("metric");
      x.insufficient_data = c.Str("insufficient_data", false);
      if (x.insufficient_data.empty()) {
        x.statistic = c.Num("statistic");
        x.df = static_cast<int>(c.Int("df"));
        x.p_value = c.Num("p_value");
      }
      out.chi_squared.push_back(std::move(x));
    }
  }
  if (const auto* s = r.Find("srm"); s && !s->is_null()) {
    Reader sr(s, "report.srm", &status);
    if (sr.ok()) {
      if (const auto* obs = sr.Array("observed", false)) {
        for (size_t i = 0; i < obs->size(); ++i) {
          const auto& x = (*obs)[i];
          if (!x.is_int64() && !x.is_uint64()) {
            status = absl::InvalidArgumentError(StrCat("analysis report: report.srm.observed[", i, "] must be an integer"));
            break;
          }
          out.srm.observed.push_back(x.is_int64() ? x.as_int64() : static_cast<int64_t>(x.as_uint64()));
        }
      }
      out.srm.checked = sr.Bool("checked", false);
      out.srm.reason = sr.Str("reason", false);
      if (out.srm.checked) {
        if (const auto* shares = sr.Array("expected_share", false)) {
          for (const auto& x : *shares) out.srm.expected_share.push_back(x.is_number() ? x.to_number<double>() : 0);
        }
        out.srm.chi2 = sr.Num("chi2", false);
        out.srm.p_value = sr.Num("p_value", false, 1);
        out.srm.mismatch = sr.Bool("mismatch", false);
        out.srm.threshold = sr.Num("threshold", false, 0.001);
        out.srm.note = sr.Str("note", false);
      }
      out.srm.period = sr.Str("period", false);
    }
  }
  if (const auto* o = r.Find("outcomes"); o && !o->is_null()) {
    Reader orr(o, "report.outcomes", &status);
    if (orr.ok()) {
      OutcomeCounts c;
      c.attributed = orr.Int("attributed", false);
      c.covariate = orr.Int("covariate", false);
      if (const auto* u = orr.Find("unattributed"); u && u->is_object()) {
        Reader ur(u, "report.outcomes.unattributed", &status);
        c.before_exposure = ur.Int("before_exposure", false);
        c.after_window = ur.Int("after_window", false);
        c.unknown_unit = ur.Int("unknown_unit", false);
      }
      out.outcomes = c;
    }
  }
  if (const auto* d = r.Find("decision"); d && !d->is_null()) {
    out.decision = DecisionFromReader(*d, "report.decision", &status);
  }
  if (const auto* t = r.Array("timeline", false)) {
    for (size_t i = 0; i < t->size() && status.ok(); ++i) {
      Reader tr(&(*t)[i], StrCat("report.timeline[", i, "]"), &status);
      if (!tr.ok()) break;
      TimelineSeries s;
      s.treatment = tr.Str("treatment");
      s.metric = tr.Str("metric");
      if (const auto* pts = tr.Array("points")) {
        for (size_t j = 0; j < pts->size() && status.ok(); ++j) {
          Reader pr(&(*pts)[j], StrCat(tr.Path("points"), "[", j, "]"), &status);
          if (!pr.ok()) break;
          s.points.push_back({pr.Int("units"), pr.Int("ts_us", false), pr.Num("lift"), pr.Pair("ci")});
        }
      }
      out.timeline.push_back(std::move(s));
    }
  }
  if (const auto* sh = r.Find("shadow"); sh && !sh->is_null()) out.shadow = ShadowFromReader(*sh, "report.shadow", &status);
  if (const auto* list = r.Array("shadow_evaluation", false)) {
    for (size_t i = 0; i < list->size() && status.ok(); ++i) {
      Reader er(&(*list)[i], StrCat("report.shadow_evaluation[", i, "]"), &status);
      if (!er.ok()) break;
      ShadowEvaluation e;
      e.arm = er.Str("arm");
      e.shadow_arm = er.Str("shadow_arm");
      e.requests = er.Int("requests", false);
      e.positives = er.Int("positives", false);
      e.insufficient_data = er.Str("insufficient_data", false);
      if (e.insufficient_data.empty()) {
        Reader auc(er.Find("auc"), er.Path("auc"), &status);
        Reader loss(er.Find("log_loss"), er.Path("log_loss"), &status);
        if (!auc.ok() || !loss.ok()) break;
        e.auc = auc.Num("served");
        e.shadow_auc = auc.Num("shadow");
        e.auc_diff = auc.Num("diff");
        e.auc_diff_ci = auc.Pair("diff_ci");
        e.auc_p_value = auc.Num("p_value");
        e.log_loss = loss.Num("served");
        e.shadow_log_loss = loss.Num("shadow");
        e.log_loss_diff = loss.Num("diff");
        e.log_loss_diff_ci = loss.Pair("diff_ci");
        e.log_loss_p_value = loss.Num("p_value");
        e.shadow_worse = er.Bool("shadow_worse", false);
        e.shadow_better = er.Bool("shadow_better", false);
      }
      out.shadow_evaluation.push_back(std::move(e));
    }
  }
  if (const auto* b = r.Find("bandit"); b && !b->is_null()) out.bandit = BanditFromReader(*b, "report.bandit", &status);
  if (const auto* c = r.Find("conclusion"); c && !c->is_null() && status.ok()) {
    Reader cr(c, "report.conclusion", &status);
    if (cr.ok()) {
      out.conclusion = Conclusion{cr.Str("action"), cr.Str("winner"), cr.Str("winner_version", false),
                                  cr.Str("tested_control", false), cr.Int("at_us", false), cr.Str("reason", false)};
    }
  }
  if (out.primary_metric.empty()) out.primary_metric = out.decision.metric;
  if (!status.ok()) return status;
  return out;
}

}  // namespace abgate::analysis
