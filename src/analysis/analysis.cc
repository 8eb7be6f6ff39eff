#include "analysis/analysis.h"

#include <algorithm>
#include <cmath>
#include <future>

#include <boost/json.hpp>

#include "common/strings.h"
#include "stats/bayes.h"
#include "stats/distributions.h"
#include "stats/model_quality.h"
#include "stats/multiple_testing.h"
#include "stats/sequential.h"

namespace abgate::analysis {

namespace json = boost::json;

namespace {

json::array Pair(double a, double b) { return json::array{a, b}; }

struct ArmState {
  std::vector<stats::Proportion> props;
  std::vector<stats::Moments> moments;
  int64_t units = 0;
};

std::vector<ArmState> Aggregate(const AnalysisInput& in) {
  std::vector<ArmState> arms(in.arms.size());
  for (auto& a : arms) {
    a.props.resize(in.metrics.size());
    a.moments.resize(in.metrics.size());
  }
  for (const auto& unit : in.units) {
    auto& a = arms[unit.arm];
    ++a.units;
    for (size_t j = 0; j < in.metrics.size(); ++j) {
      if (in.metrics[j].kind == MetricKind::kBinary) {
        a.props[j].Add(unit.values[j] > 0);
      } else {
        a.moments[j].Add(unit.values[j]);
      }
    }
  }
  return arms;
}

absl::StatusOr<stats::Comparison> Compare(const AnalysisInput& in, const std::vector<ArmState>& arms, size_t metric,
                                          int treatment) {
  const auto& c = arms[in.control];
  const auto& t = arms[treatment];
  return in.metrics[metric].kind == MetricKind::kBinary
             ? stats::TwoProportionZTest(c.props[metric], t.props[metric], in.alpha)
             : stats::WelchTTest(c.moments[metric], t.moments[metric], in.alpha);
}

json::object MetricSummary(const AnalysisInput& in, const ArmState& a, size_t j) {
  json::object o;
  const double z = stats::NormalQuantile(1 - in.alpha / 2);
  if (in.metrics[j].kind == MetricKind::kBinary) {
    o["type"] = "binary";
    o["n"] = a.props[j].trials;
    auto p = a.props[j].Rate();
    if (!p.ok()) {
      o["insufficient_data"] = std::string(p.status().message());
      return o;
    }
    const double se = std::sqrt(*p * (1 - *p) / static_cast<double>(a.props[j].trials));
    o["mean"] = *p;
    o["ci"] = Pair(std::max(0.0, *p - z * se), std::min(1.0, *p + z * se));
  } else {
    o["type"] = "continuous";
    o["n"] = a.moments[j].n;
    auto v = a.moments[j].VarianceOfMean();
    if (!v.ok()) {
      o["insufficient_data"] = std::string(v.status().message());
      return o;
    }
    const double q = a.moments[j].n > 1 ? stats::StudentTQuantile(1 - in.alpha / 2, static_cast<double>(a.moments[j].n - 1)) : z;
    o["mean"] = a.moments[j].mean;
    o["ci"] = Pair(a.moments[j].mean - q * std::sqrt(*v), a.moments[j].mean + q * std::sqrt(*v));
  }
  return o;
}

}  // namespace

absl::StatusOr<json::value> Analyze(const AnalysisInput& in) {
  const int k = static_cast<int>(in.arms.size());
  if (k < 1) return absl::InvalidArgumentError("no arms to analyse");
  if (in.control < 0 || in.control >= k) return absl::InvalidArgumentError("control is not one of the arms");
  if (in.metrics.empty()) return absl::InvalidArgumentError("no metrics to analyse");
  if (in.primary < 0 || in.primary >= static_cast<int>(in.metrics.size())) {
    return absl::InvalidArgumentError("the primary metric is not one of the metrics");
  }
  if (!(in.alpha > 0 && in.alpha < 1)) return absl::InvalidArgumentError("alpha must be in (0, 1)");
  for (const auto& u : in.units) {
    if (u.arm < 0 || u.arm >= k || u.values.size() != in.metrics.size()) {
      return absl::InvalidArgumentError("a unit refers to an unknown arm or has the wrong number of values");
    }
  }
  const auto arms = Aggregate(in);

  json::object report;
  report["experiment"] = in.experiment;
  report["unit"] = in.unit;
  report["control"] = in.arms[in.control].name;
  report["alpha"] = in.alpha;

  // Model quality per arm: scores split by arm in one pass, then each arm's AUC (a sort of its
  // predictions) on one thread and its log loss and calibration on another, so the largest
  // arm's sort is the only long task.
  struct Quality {
    absl::StatusOr<stats::Auc> auc = absl::FailedPreconditionError("no scored predictions");
    absl::StatusOr<double> log_loss = absl::FailedPreconditionError("no scored predictions");
    absl::StatusOr<double> ece = absl::FailedPreconditionError("no scored predictions");
    size_t n = 0;
  };
  std::vector<size_t> per_arm(k);
  for (const auto& p : in.predictions) {
    if (p.arm < 0 || p.arm >= k) return absl::InvalidArgumentError("a prediction refers to an unknown arm");
    ++per_arm[p.arm];
  }
  std::vector<std::vector<double>> scores(k);
  std::vector<std::vector<int>> labels(k);
  for (int a = 0; a < k; ++a) {
    scores[a].reserve(per_arm[a]);
    labels[a].reserve(per_arm[a]);
  }
  for (const auto& p : in.predictions) {
    scores[p.arm].push_back(p.score);
    labels[p.arm].push_back(p.label);
  }
  std::vector<std::future<absl::StatusOr<stats::Auc>>> auc_futures;
  std::vector<std::future<Quality>> quality_futures;
  for (int a = 0; a < k; ++a) {
    const bool any = !scores[a].empty();
    auc_futures.push_back(std::async(any ? std::launch::async : std::launch::deferred,
                                     [&, a] { return stats::ComputeAuc(scores[a], labels[a], in.alpha); }));
    quality_futures.push_back(std::async(std::launch::async, [&, a, any] {
      Quality q;
      q.n = scores[a].size();
      if (!any) return q;
      q.log_loss = stats::LogLoss(scores[a], labels[a]);
      q.ece = stats::ExpectedCalibrationError(scores[a], labels[a]);
      return q;
    }));
  }
  std::vector<std::optional<stats::Auc>> aucs(k);
  json::array arm_list;
  for (int a = 0; a < k; ++a) {
    json::object o;
    o["arm"] = in.arms[a].name;
    o["model_version"] = in.arms[a].model_version;
    o["units"] = arms[a].units;
    o["exposures"] = in.arms[a].exposures;
    json::object metrics;
    for (size_t j = 0; j < in.metrics.size(); ++j) metrics[in.metrics[j].name] = MetricSummary(in, arms[a], j);
    Quality q = quality_futures[a].get();
    if (q.n > 0) {
      q.auc = auc_futures[a].get();
      json::object auc;
      if (q.auc.ok()) {
        aucs[a] = *q.auc;
        auc["value"] = q.auc->value;
        auc["ci"] = Pair(q.auc->ci.low, q.auc->ci.high);
        auc["n"] = static_cast<int64_t>(q.n);
      } else {
        auc["insufficient_data"] = std::string(q.auc.status().message());
      }
      metrics["auc"] = std::move(auc);
      if (q.log_loss.ok()) metrics["log_loss"] = json::object{{"value", *q.log_loss}};
      if (q.ece.ok()) metrics["calibration_error"] = json::object{{"value", *q.ece}, {"bins", 10}};
    }
    o["metrics"] = std::move(metrics);
    arm_list.push_back(std::move(o));
  }
  report["arms"] = std::move(arm_list);

  // Comparisons of every treatment against control, per metric, plus AUC.
  json::array comparisons;
  std::vector<size_t> tested;  // indices into comparisons that carry p-values
  std::vector<double> p_values, seq_p_values;
  for (size_t j = 0; j < in.metrics.size(); ++j) {
    for (int t = 0; t < k; ++t) {
      if (t == in.control) continue;
      json::object c;
      c["metric"] = in.metrics[j].name;
      c["control"] = in.arms[in.control].name;
      c["treatment"] = in.arms[t].name;
      auto r = Compare(in, arms, j, t);
      if (!r.ok()) {
        c["insufficient_data"] = std::string(r.status().message());
        c["significant"] = false;
        comparisons.push_back(std::move(c));
        continue;
      }
      c["test"] = r->test;
      c["diff"] = r->diff;
      c["diff_ci"] = Pair(r->diff_ci.low, r->diff_ci.high);
      if (r->lift) {
        c["lift"] = *r->lift;
        c["lift_ci"] = Pair(r->lift_ci->low, r->lift_ci->high);
      } else {
        c["lift"] = nullptr;
      }
      c["statistic"] = r->statistic;
      if (r->df > 0) c["df"] = r->df;
      c["p_value"] = r->p_value;
      const int64_t n = arms[in.control].units + arms[t].units;
      auto seq = stats::MixtureSequentialTest(r->diff, r->diff_variance, n, in.alpha, in.sequential_tuning_n);
      double seq_p = 1;
      if (seq.ok()) {
        seq_p = seq->p_value;
        c["sequential_p_value"] = seq->p_value;
        c["sequential_ci"] = Pair(seq->ci.low, seq->ci.high);
      }
      auto chance = in.metrics[j].kind == MetricKind::kBinary
                        ? stats::ChanceToBeatBinomial(arms[in.control].props[j], arms[t].props[j])
                        : stats::ChanceToBeatGaussian(arms[in.control].moments[j], arms[t].moments[j]);
      if (chance.ok()) c["chance_to_beat"] = *chance;
      tested.push_back(comparisons.size());
      p_values.push_back(r->p_value);
      seq_p_values.push_back(seq_p);
      comparisons.push_back(std::move(c));
    }
  }
  for (int t = 0; t < k; ++t) {
    if (t == in.control || !aucs[t] || !aucs[in.control]) continue;
    auto r = stats::AucDifferenceTest(*aucs[in.control], *aucs[t], in.alpha);
    if (!r.ok()) continue;
    json::object c;
    c["metric"] = "auc";
    c["control"] = in.arms[in.control].name;
    c["treatment"] = in.arms[t].name;
    c["test"] = r->test;
    c["diff"] = r->diff;
    c["diff_ci"] = Pair(r->diff_ci.low, r->diff_ci.high);
    c["statistic"] = r->statistic;
    c["p_value"] = r->p_value;
    tested.push_back(comparisons.size());
    p_values.push_back(r->p_value);
    seq_p_values.push_back(1);  // model quality is reported, not used for stopping
    comparisons.push_back(std::move(c));
  }
  std::vector<double> adjusted = p_values, seq_adjusted = seq_p_values;
  if (in.adjustment == "holm") {
    adjusted = stats::HolmBonferroni(p_values);
    seq_adjusted = stats::HolmBonferroni(seq_p_values);
  } else if (in.adjustment == "bh") {
    adjusted = stats::BenjaminiHochberg(p_values);
    seq_adjusted = stats::BenjaminiHochberg(seq_p_values);
  }
  for (size_t i = 0; i < tested.size(); ++i) {
    auto& c = comparisons[tested[i]].as_object();
    c["p_value_adjusted"] = adjusted[i];
    if (c.contains("sequential_p_value")) c["sequential_p_value_adjusted"] = seq_adjusted[i];
    c["significant"] = adjusted[i] < in.alpha;
  }
  report["comparisons"] = comparisons;
  report["adjustment"] = in.adjustment;

  // k-arm chi-squared per binary metric.
  if (k > 2) {
    json::array chi;
    for (size_t j = 0; j < in.metrics.size(); ++j) {
      if (in.metrics[j].kind != MetricKind::kBinary) continue;
      std::vector<stats::Proportion> props;
      for (const auto& a : arms) props.push_back(a.props[j]);
      json::object o{{"metric", in.metrics[j].name}};
      if (auto r = stats::ChiSquaredIndependence(props); r.ok()) {
        o["statistic"] = r->statistic;
        o["df"] = r->df;
        o["p_value"] = r->p_value;
      } else {
        o["insufficient_data"] = std::string(r.status().message());
      }
      chi.push_back(std::move(o));
    }
    report["chi_squared"] = std::move(chi);
  }

  // Sample-ratio mismatch against the configured weights.
  json::object srm;
  bool srm_mismatch = false;
  std::vector<int64_t> observed;
  std::vector<double> weights;
  for (int a = 0; a < k; ++a) {
    observed.push_back(arms[a].units);
    weights.push_back(in.arms[a].weight);
  }
  srm["observed"] = json::value_from(observed);
  if (!in.weights_known) {
    srm["checked"] = false;
    srm["reason"] = "no configured weights (give --config or --weights)";
  } else if (auto r = stats::SampleRatioMismatch(observed, weights); r.ok()) {
    double total = 0;
    for (double w : weights) total += w;
    json::array shares;
    for (double w : weights) shares.push_back(w / total);
    srm["checked"] = true;
    srm["expected_share"] = std::move(shares);
    srm["chi2"] = r->test.statistic;
    srm["p_value"] = r->test.p_value;
    srm["mismatch"] = r->mismatch;
    srm["threshold"] = 0.001;
    if (!r->note.empty()) srm["note"] = r->note;
    srm_mismatch = r->mismatch;
  } else {
    srm["checked"] = false;
    srm["reason"] = std::string(r.status().message());
  }
  report["srm"] = std::move(srm);
  report["multiple_exposure_units"] = in.multiple_exposure_units;
  if (in.outcomes) {
    report["outcomes"] = json::object{{"attributed", in.outcomes->attributed},
                                      {"unattributed", json::object{{"before_exposure", in.outcomes->before_exposure},
                                                                    {"after_window", in.outcomes->after_window},
                                                                    {"unknown_unit", in.outcomes->unknown_unit}}}};
  }

  // Decision on the primary metric, with the (adjusted) always-valid p-values.
  json::object decision;
  const std::string& primary = in.metrics[in.primary].name;
  decision["metric"] = primary;
  if (srm_mismatch) {
    decision["action"] = "investigate";
    decision["winner"] = nullptr;
    decision["reason"] = "sample ratio mismatch: the split is not what was configured, so the comparison is not trustworthy";
  } else {
    int best = -1, worse = 0, treatments = 0;
    double best_diff = 0, best_p = 1, min_p = 1;
    for (const auto& v : comparisons) {
      const auto& c = v.as_object();
      if (c.at("metric").as_string() != primary || !c.contains("sequential_p_value_adjusted")) continue;
      ++treatments;
      const double p = c.at("sequential_p_value_adjusted").as_double();
      const double diff = c.at("diff").as_double();
      min_p = std::min(min_p, p);
      if (p < in.alpha && diff > 0 && diff > best_diff) {
        best_diff = diff;
        best_p = p;
        for (int a = 0; a < k; ++a) {
          if (in.arms[a].name == c.at("treatment").as_string()) best = a;
        }
      }
      if (p < in.alpha && diff < 0) ++worse;
    }
    if (best >= 0) {
      decision["action"] = "promote";
      decision["winner"] = in.arms[best].name;
      decision["reason"] = StrCat(in.arms[best].name, " beats ", in.arms[in.control].name, " on ", primary,
                                  " under the sequential test (adjusted p = ", best_p, ")");
    } else if (treatments > 0 && worse == treatments) {
      decision["action"] = "rollback";
      decision["winner"] = in.arms[in.control].name;
      decision["reason"] = StrCat("every treatment is significantly worse than ", in.arms[in.control].name, " on ", primary);
    } else {
      decision["action"] = "continue";
      decision["winner"] = nullptr;
      decision["reason"] = treatments == 0 ? StrCat("not enough data on ", primary, " yet")
                                           : StrCat("no significant difference on ", primary,
                                                    " yet (smallest adjusted sequential p = ", min_p, ")");
    }
  }
  report["decision"] = std::move(decision);

  // Timeline of the primary metric's lift with its confidence sequence (for plots).
  json::array timeline;
  if (in.units.size() >= 40) {
    // One pass over the units in time order, snapshotting the running per-arm states at 20
    // checkpoints (O(n), not 20 re-aggregations).
    // The units in time order (ties in input order), each with what the pass needs, so the
    // sort moves small contiguous records instead of chasing indices into the units.
    const size_t j = static_cast<size_t>(in.primary);
    struct Point {
      int64_t ts;
      uint32_t index;
      int arm;
      double value;
    };
    std::vector<Point> order(in.units.size());
    for (size_t i = 0; i < order.size(); ++i) {
      order[i] = {in.units[i].first_ts_us, static_cast<uint32_t>(i), in.units[i].arm, in.units[i].values[j]};
    }
    std::sort(order.begin(), order.end(),
              [](const Point& a, const Point& b) { return a.ts != b.ts ? a.ts < b.ts : a.index < b.index; });
    const bool binary = in.metrics[j].kind == MetricKind::kBinary;
    std::vector<ArmState> running(in.arms.size());
    for (auto& a : running) {
      a.props.resize(in.metrics.size());
      a.moments.resize(in.metrics.size());
    }
    const int kPoints = 20;
    std::vector<json::array> points(k);
    int next = 1;
    for (size_t i = 0; i < order.size(); ++i) {
      const Point& unit = order[i];
      auto& a = running[unit.arm];
      ++a.units;
      if (binary) {
        a.props[j].Add(unit.value > 0);
      } else {
        a.moments[j].Add(unit.value);
      }
      if (i + 1 != order.size() * next / kPoints) continue;
      ++next;
      for (int t = 0; t < k; ++t) {
        if (t == in.control) continue;
        auto r = Compare(in, running, j, t);
        if (!r.ok() || !r->lift || !(r->lift_variance > 0)) continue;
        auto seq = stats::MixtureSequentialTest(*r->lift, r->lift_variance, running[in.control].units + running[t].units,
                                                in.alpha, in.sequential_tuning_n);
        if (!seq.ok()) continue;
        points[t].push_back(json::object{{"units", static_cast<int64_t>(i + 1)},
                                         {"ts_us", unit.ts},
                                         {"lift", *r->lift},
                                         {"ci", Pair(seq->ci.low, seq->ci.high)}});
      }
    }
    for (int t = 0; t < k; ++t) {
      if (t == in.control) continue;
      timeline.push_back(json::object{{"treatment", in.arms[t].name}, {"metric", primary}, {"points", std::move(points[t])}});
    }
  }
  report["timeline"] = std::move(timeline);
  return json::value(std::move(report));
}

}  // namespace abgate::analysis
