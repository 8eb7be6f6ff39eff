#include "analysis/analysis.h"

#include <algorithm>
#include <cmath>
#include <future>
#include <limits>

#include <boost/json.hpp>

#include "analysis/decision.h"
#include "common/human.h"
#include "common/parallel.h"
#include "common/strings.h"
#include "stats/bayes.h"
#include "stats/cuped.h"
#include "stats/distributions.h"
#include "stats/model_quality.h"
#include "stats/multiple_testing.h"
#include "stats/sequential.h"

namespace abgate::analysis {

namespace json = boost::json;

namespace {

struct ArmState {
  std::vector<stats::Proportion> props;
  std::vector<stats::Moments> moments;
  std::vector<stats::CupedState> cuped;  // per metric; filled for metrics with a covariate
  int64_t units = 0;
};

// Per metric, the index of its covariate's value in UnitObservation::values, or -1.
using CovariateSlots = std::vector<int>;

absl::StatusOr<CovariateSlots> SlotsOf(const AnalysisInput& in) {
  CovariateSlots slots(in.metrics.size(), -1);
  for (size_t j = 0; j < in.metrics.size(); ++j) {
    const std::string& name = in.metrics[j].cuped_covariate;
    if (name.empty()) continue;
    auto it = std::find(in.covariates.begin(), in.covariates.end(), name);
    if (it == in.covariates.end()) {
      return absl::InvalidArgumentError(StrCat("metric ", in.metrics[j].name, ": covariate ", name, " has no values"));
    }
    slots[j] = static_cast<int>(in.metrics.size() + static_cast<size_t>(it - in.covariates.begin()));
  }
  return slots;
}

ArmState EmptyArm(const AnalysisInput& in) {
  ArmState a;
  a.props.resize(in.metrics.size());
  a.moments.resize(in.metrics.size());
  a.cuped.resize(in.metrics.size());
  return a;
}

// The per-arm statistics the tests read, from the state's sufficient statistics (arm a of the
// report is the state's arm state_arm[a], -1: none).
std::vector<ArmState> FromState(const AnalysisInput& in, const CovariateSlots& slots, const AnalysisState& state,
                                const std::vector<int>& state_arm) {
  std::vector<ArmState> arms(in.arms.size(), EmptyArm(in));
  for (size_t a = 0; a < arms.size(); ++a) {
    if (state_arm[a] < 0) continue;
    const AnalysisState::Arm& s = state.arm(state_arm[a]);
    ArmState& o = arms[a];
    o.units = s.units;
    for (size_t j = 0; j < in.metrics.size(); ++j) {
      if (in.metrics[j].kind == MetricKind::kBinary) {
        o.props[j] = s.props[j];
      } else {
        o.moments[j] = stats::MomentsOf(s.units, s.sum[j], s.sum_squares[j]);
      }
      if (slots[j] >= 0) {
        const auto& c = s.cuped[j];
        o.cuped[j] = stats::CupedState{s.units, c.y.Value(), c.y2.Value(), c.x.Value(), c.x2.Value(), c.xy.Value()};
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

MetricSummary Summarize(const AnalysisInput& in, const ArmState& a, size_t j) {
  MetricSummary o;
  o.name = in.metrics[j].name;
  o.kind = in.metrics[j].kind;
  const double z = stats::NormalQuantile(1 - in.alpha / 2);
  if (in.metrics[j].kind == MetricKind::kBinary) {
    o.n = a.props[j].trials;
    auto p = a.props[j].Rate();
    if (!p.ok()) {
      o.insufficient_data = std::string(p.status().message());
      return o;
    }
    const double se = std::sqrt(*p * (1 - *p) / static_cast<double>(a.props[j].trials));
    o.mean = *p;
    o.ci = Interval{std::max(0.0, *p - z * se), std::min(1.0, *p + z * se)};
  } else {
    o.n = a.moments[j].n;
    auto v = a.moments[j].VarianceOfMean();
    if (!v.ok()) {
      o.insufficient_data = std::string(v.status().message());
      return o;
    }
    const double q = a.moments[j].n > 1 ? stats::StudentTQuantile(1 - in.alpha / 2, static_cast<double>(a.moments[j].n - 1)) : z;
    o.mean = a.moments[j].mean;
    o.ci = Interval{a.moments[j].mean - q * std::sqrt(*v), a.moments[j].mean + q * std::sqrt(*v)};
  }
  return o;
}

Interval ToInterval(const stats::Interval& i) { return {i.low, i.high}; }

// A comparison against control as the decision reads it: CUPED-adjusted when the metric names
// a covariate and the adjustment applies (Deng et al. 2013), else the raw test, with why.
struct Compared {
  absl::StatusOr<stats::Comparison> comparison = absl::FailedPreconditionError("not compared");
  std::optional<CupedReport> cuped;
  std::optional<stats::CupedResult> adjusted;
};

Compared CompareAdjusted(const AnalysisInput& in, const CovariateSlots& slots, const std::vector<ArmState>& arms,
                         size_t metric, int treatment) {
  Compared out;
  out.comparison = Compare(in, arms, metric, treatment);
  if (slots[metric] < 0) return out;
  CupedReport k;
  k.covariate = in.metrics[metric].cuped_covariate;
  auto r = stats::CupedWelchTest(arms[in.control].cuped[metric], arms[treatment].cuped[metric], in.alpha);
  if (!r.ok()) {
    k.not_applied = std::string(r.status().message());
    out.cuped = std::move(k);
    return out;
  }
  k.applied = true;
  k.theta = r->theta;
  k.variance_reduction = r->variance_reduction;
  // The unadjusted numbers shown beside are the metric's own test's (z for a binary metric).
  const stats::Comparison& raw = out.comparison.ok() ? *out.comparison : r->unadjusted;
  k.unadjusted_diff = raw.diff;
  k.unadjusted_diff_ci = ToInterval(raw.diff_ci);
  k.unadjusted_lift = raw.lift;
  k.unadjusted_p_value = raw.p_value;
  out.comparison = r->comparison;
  out.cuped = std::move(k);
  out.adjusted = *std::move(r);
  return out;
}

std::vector<double> Adjust(const std::vector<double>& p, std::string_view method) {
  if (method == "holm") return stats::HolmBonferroni(p);
  if (method == "bh") return stats::BenjaminiHochberg(p);
  return p;
}

// Adjusts the comparisons of one family: fixed-horizon p-values over every member, sequential
// p-values over the members that have one (AUC has none: it is not in that adjustment at all,
// rather than in it with a placeholder).
void AdjustFamily(std::vector<ComparisonReport*> family, std::string_view method, double alpha) {
  std::vector<double> fixed, sequential;
  std::vector<ComparisonReport*> with_sequential;
  for (auto* c : family) {
    fixed.push_back(c->p_value);
    if (c->sequential_p_value) {
      sequential.push_back(*c->sequential_p_value);
      with_sequential.push_back(c);
    }
  }
  const auto fixed_adj = Adjust(fixed, method);
  const auto seq_adj = Adjust(sequential, method);
  for (size_t i = 0; i < family.size(); ++i) {
    family[i]->p_value_adjusted = fixed_adj[i];
    family[i]->family_size = static_cast<int>(family.size());
  }
  for (size_t i = 0; i < with_sequential.size(); ++i) {
    with_sequential[i]->sequential_p_value_adjusted = seq_adj[i];
    with_sequential[i]->sequential_family_size = static_cast<int>(with_sequential.size());
  }
  for (auto* c : family) {
    c->significant = c->sequential_p_value_adjusted ? *c->sequential_p_value_adjusted < alpha : c->p_value_adjusted < alpha;
  }
}

}  // namespace

namespace {
absl::StatusOr<Report> AnalyzeState(const AnalysisInput& in, const CovariateSlots& slots, const AnalysisState& state,
                                    const std::vector<int>& state_arm, int64_t maturing_units);

// The bandit section of the report (see BanditReport): IPW rate per arm from the recorded
// assignment probabilities (Hájek's estimator, stats::IpwOfSums), the posterior probability
// that each arm is best (Monte Carlo with a fixed seed, so the same data gives the same
// number), and each arm's share of the traffic now. Over the counted (mature) units.
BanditReport BanditSection(const AnalysisInput& in, const AnalysisState& state, const std::vector<int>& state_arm) {
  const int k = static_cast<int>(in.arms.size());
  BanditReport b;
  b.metric = in.metrics[in.primary].name;
  b.floor = in.bandit->floor;
  b.note = "traffic followed the outcomes (bandit), so fixed-horizon p-values do not apply: rates are "
           "inverse-propensity weighted and arms ranked by the posterior probability of being best";
  std::vector<stats::BanditArm> evidence(k);
  std::vector<stats::IpwSums> sums(k);
  for (int a = 0; a < k; ++a) {
    if (state_arm[a] < 0) continue;
    const AnalysisState::Arm& s = state.arm(state_arm[a]);
    evidence[a].trials = s.units;
    evidence[a].successes = s.positives;
    b.without_probability += s.without_probability;
    sums[a] = {s.ipw_units, s.w.Value(), s.wy.Value(), s.wyy2.Value(), s.wy2.Value(), s.w2.Value()};
  }
  common::Xoshiro256 rng(0xab6a7e18);
  auto best = stats::ThompsonWeights(evidence, 0, 100000, rng);
  double total_weight = 0;
  for (const auto& a : in.arms) total_weight += a.weight;
  for (int a = 0; a < k; ++a) {
    BanditArmReport o;
    o.arm = in.arms[a].name;
    o.requests = evidence[a].trials;
    o.successes = evidence[a].successes;
    o.weight = total_weight > 0 ? in.arms[a].weight / total_weight : 0;
    o.prob_best = best.ok() ? (*best)[a] : 0;
    auto ipw = stats::IpwOfSums(sums[a], in.alpha);
    if (ipw.ok()) {
      o.ipw_mean = ipw->mean;
      o.ipw_ci = ToInterval(ipw->ci);
    } else {
      o.insufficient_data = sums[a].n < 2 ? "fewer than 2 requests with a recorded probability"
                                          : std::string(ipw.status().message());
    }
    b.arms.push_back(std::move(o));
  }
  return b;
}
}  // namespace

std::vector<std::string> CovariatesOf(const std::vector<MetricSpec>& metrics) {
  std::vector<std::string> out;
  for (const auto& m : metrics) {
    if (!m.cuped_covariate.empty() && std::find(out.begin(), out.end(), m.cuped_covariate) == out.end()) {
      out.push_back(m.cuped_covariate);
    }
  }
  return out;
}

std::string UnitOf(const config::ExperimentConfig& experiment) {
  return experiment.routing_mode == config::RoutingMode::kRequestRandom ||
                 experiment.routing_mode == config::RoutingMode::kBandit
             ? "request"
             : "user";
}

std::vector<stats::BanditArm> BanditEvidence(const AnalysisInput& in) {
  std::vector<stats::BanditArm> arms(in.arms.size());
  const int64_t cutoff = in.maturity_us > 0 && in.as_of_us > 0 ? in.as_of_us - in.maturity_us : std::numeric_limits<int64_t>::max();
  if (in.state) {  // a follower's statistics: the same counts, kept per arm (AnalysisState::Count)
    if (in.state_arms.size() != arms.size() || in.state->primary() != in.primary) return arms;
    in.state->SetCutoff(cutoff);
    for (size_t a = 0; a < arms.size(); ++a) {
      const int s = in.state_arms[a];
      if (s < 0 || s >= in.state->arms()) continue;
      arms[a].trials = in.state->arm(s).units;
      arms[a].successes = in.state->arm(s).positives;
    }
    return arms;
  }
  for (const auto& u : in.units) {
    if (u.first_ts_us > cutoff || u.arm < 0 || u.arm >= static_cast<int>(arms.size())) continue;
    if (in.primary < 0 || static_cast<size_t>(in.primary) >= u.values.size()) continue;
    ++arms[u.arm].trials;
    if (u.values[in.primary] > 0) ++arms[u.arm].successes;
  }
  return arms;
}

absl::StatusOr<Report> Analyze(const AnalysisInput& in) {
  const int k = static_cast<int>(in.arms.size());
  if (k < 1) return absl::InvalidArgumentError("no arms to analyse");
  if (in.control < 0 || in.control >= k) return absl::InvalidArgumentError("control is not one of the arms");
  if (in.metrics.empty()) return absl::InvalidArgumentError("no metrics to analyse");
  if (in.primary < 0 || in.primary >= static_cast<int>(in.metrics.size())) {
    return absl::InvalidArgumentError("the primary metric is not one of the metrics");
  }
  if (!(in.alpha > 0 && in.alpha < 1)) return absl::InvalidArgumentError("alpha must be in (0, 1)");
  if (in.adjustment != "holm" && in.adjustment != "bh" && in.adjustment != "none") {
    return absl::InvalidArgumentError("adjustment must be holm, bh or none");
  }
  auto slots = SlotsOf(in);
  if (!slots.ok()) return slots.status();
  // Units whose outcomes may still come are left out, in every arm alike (IsMaturing).
  const int64_t cutoff = in.maturity_us > 0 && in.as_of_us > 0 ? in.as_of_us - in.maturity_us
                                                                : std::numeric_limits<int64_t>::max();
  if (in.state) {
    if (in.state_arms.size() != in.arms.size()) return absl::InvalidArgumentError("state_arms does not match the arms");
    if (in.state->primary() != in.primary) return absl::InvalidArgumentError("the state's primary metric is not the input's");
    for (int s : in.state_arms) {
      if (s >= in.state->arms()) return absl::InvalidArgumentError("state_arms names an arm the state does not have");
    }
    in.state->SetCutoff(cutoff);
    return AnalyzeState(in, *slots, *in.state, in.state_arms, in.maturing_units + in.state->maturing_units());
  }
  const size_t width = in.metrics.size() + in.covariates.size();
  for (const auto& u : in.units) {
    if (u.arm < 0 || u.arm >= k || u.values.size() != width) {
      return absl::InvalidArgumentError("a unit refers to an unknown arm or has the wrong number of values");
    }
  }
  for (const auto& p : in.predictions) {
    if (p.arm < 0 || p.arm >= k) return absl::InvalidArgumentError("a prediction refers to an unknown arm");
    if (!std::isfinite(p.score)) return absl::InvalidArgumentError("a prediction's score is not finite");
  }
  std::vector<MetricKind> kinds;
  for (const auto& m : in.metrics) kinds.push_back(m.kind);
  AnalysisState state(k, std::move(kinds), *slots, in.primary);
  state.SetCutoff(cutoff);
  const int workers = common::DefaultParallelism();
  state.AddUnits(in.units, workers);
  state.AddPredictions(in.predictions, workers);
  std::vector<int> identity(static_cast<size_t>(k));
  for (int a = 0; a < k; ++a) identity[static_cast<size_t>(a)] = a;
  return AnalyzeState(in, *slots, state, identity, in.maturing_units + state.maturing_units());
}

namespace {

absl::StatusOr<Report> AnalyzeState(const AnalysisInput& in, const CovariateSlots& slots_in, const AnalysisState& state,
                                    const std::vector<int>& state_arm, int64_t maturing_units) {
  const int k = static_cast<int>(in.arms.size());
  const CovariateSlots* slots = &slots_in;
  const auto arms = FromState(in, slots_in, state, state_arm);
  // The report's arm of each state arm (-1: not reported).
  std::vector<int> report_arm(static_cast<size_t>(state.arms()), -1);
  for (int a = 0; a < k; ++a) {
    if (state_arm[a] >= 0) report_arm[static_cast<size_t>(state_arm[a])] = a;
  }

  Report report;
  report.experiment = in.experiment;
  report.unit = in.unit;
  report.control = in.arms[in.control].name;
  report.conclusion = in.conclusion;
  report.alpha = in.alpha;
  report.adjustment = in.adjustment;
  report.primary_metric = in.metrics[in.primary].name;
  report.metrics.push_back(report.primary_metric);
  for (size_t j = 0; j < in.metrics.size(); ++j) {
    if (static_cast<int>(j) != in.primary) report.metrics.push_back(in.metrics[j].name);
  }
  report.window = in.window;
  report.maturing_units = maturing_units;

  // Model quality per arm, from its predictions grouped by score.
  struct Quality {
    absl::StatusOr<stats::Auc> auc = absl::FailedPreconditionError("no scored predictions");
    absl::StatusOr<double> log_loss = absl::FailedPreconditionError("no scored predictions");
    absl::StatusOr<double> ece = absl::FailedPreconditionError("no scored predictions");
    int64_t n = 0;
  };
  std::vector<Quality> quality(static_cast<size_t>(k));
  for (int a = 0; a < k; ++a) {
    if (state_arm[a] < 0) continue;
    const std::vector<stats::ScoreGroup> groups = state.Groups(state_arm[a]);
    Quality& q = quality[static_cast<size_t>(a)];
    for (const auto& g : groups) q.n += g.positives + g.negatives;
    if (q.n == 0) continue;
    q.auc = stats::AucOfGroups(groups, in.alpha);
    q.log_loss = stats::LogLossOfGroups(groups);
    q.ece = stats::CalibrationErrorOfGroups(groups);
  }
  std::vector<std::optional<stats::Auc>> aucs(k);
  for (int a = 0; a < k; ++a) {
    ArmReport o;
    o.arm = in.arms[a].name;
    o.model_version = in.arms[a].model_version;
    o.versions = in.arms[a].versions;
    o.units = arms[a].units;
    o.exposures = in.arms[a].exposures;
    // Primary first, as in report.metrics.
    o.metrics.push_back(Summarize(in, arms[a], static_cast<size_t>(in.primary)));
    for (size_t j = 0; j < in.metrics.size(); ++j) {
      if (static_cast<int>(j) != in.primary) o.metrics.push_back(Summarize(in, arms[a], j));
    }
    const Quality& q = quality[static_cast<size_t>(a)];
    if (q.n > 0) {
      const auto& auc = q.auc;
      ModelQuality mq;
      mq.n = q.n;
      if (auc.ok()) {
        aucs[a] = *auc;
        mq.auc = auc->value;
        mq.auc_ci = ToInterval(auc->ci);
      } else {
        mq.auc_insufficient_data = std::string(auc.status().message());
      }
      if (q.log_loss.ok()) mq.log_loss = *q.log_loss;
      if (q.ece.ok()) mq.calibration_error = *q.ece;
      o.quality = std::move(mq);
    }
    report.arms.push_back(std::move(o));
  }

  // Comparisons of every treatment against control, per metric (primary first), plus AUC.
  std::vector<size_t> metric_order{static_cast<size_t>(in.primary)};
  for (size_t j = 0; j < in.metrics.size(); ++j) {
    if (static_cast<int>(j) != in.primary) metric_order.push_back(j);
  }
  for (size_t j : metric_order) {
    for (int t = 0; t < k; ++t) {
      if (t == in.control) continue;
      ComparisonReport c;
      c.metric = in.metrics[j].name;
      c.control = in.arms[in.control].name;
      c.treatment = in.arms[t].name;
      c.family = static_cast<int>(j) == in.primary ? Family::kPrimary : Family::kSecondary;
      Compared compared = CompareAdjusted(in, *slots, arms, j, t);
      c.cuped = std::move(compared.cuped);
      auto& r = compared.comparison;
      if (!r.ok()) {
        c.insufficient_data = arms[t].units == 0 ? StrCat("no data: ", c.treatment, " has no units")
                              : arms[in.control].units == 0 ? StrCat("no data: ", c.control, " has no units")
                                                             : std::string(r.status().message());
        report.comparisons.push_back(std::move(c));
        continue;
      }
      c.test = r->test;
      c.diff = r->diff;
      c.diff_ci = ToInterval(r->diff_ci);
      c.lift = r->lift;
      if (r->lift_ci) c.lift_ci = ToInterval(*r->lift_ci);
      c.statistic = r->statistic;
      c.df = r->df;
      c.p_value = r->p_value;
      const int64_t n = arms[in.control].units + arms[t].units;
      if (auto seq = stats::MixtureSequentialTest(r->diff, r->diff_variance, n, in.alpha, in.sequential_tuning_n); seq.ok()) {
        c.sequential_p_value = seq->p_value;
        c.sequential_ci = ToInterval(seq->ci);
      }
      auto chance = compared.adjusted
                        ? stats::ChanceToBeatGaussian(compared.adjusted->control_adjusted, compared.adjusted->treatment_adjusted)
                    : in.metrics[j].kind == MetricKind::kBinary
                        ? stats::ChanceToBeatBinomial(arms[in.control].props[j], arms[t].props[j])
                        : stats::ChanceToBeatGaussian(arms[in.control].moments[j], arms[t].moments[j]);
      if (chance.ok()) c.chance_to_beat = *chance;
      report.comparisons.push_back(std::move(c));
    }
  }
  for (int t = 0; t < k; ++t) {
    if (t == in.control || !aucs[t] || !aucs[in.control]) continue;
    auto r = stats::AucDifferenceTest(*aucs[in.control], *aucs[t], in.alpha);
    if (!r.ok()) continue;
    ComparisonReport c;
    c.metric = "auc";
    c.control = in.arms[in.control].name;
    c.treatment = in.arms[t].name;
    c.family = Family::kSecondary;
    c.test = r->test;
    c.diff = r->diff;
    c.diff_ci = ToInterval(r->diff_ci);
    c.statistic = r->statistic;
    c.p_value = r->p_value;
    report.comparisons.push_back(std::move(c));
  }
  // Multiplicity: Holm within the primary family (the decision's), the chosen adjustment within
  // the secondary family. Comparisons without data are in neither.
  std::vector<ComparisonReport*> primary, secondary;
  for (auto& c : report.comparisons) {
    if (!c.insufficient_data.empty()) continue;
    (c.family == Family::kPrimary ? primary : secondary).push_back(&c);
  }
  AdjustFamily(primary, "holm", in.alpha);
  AdjustFamily(secondary, in.adjustment, in.alpha);

  // k-arm chi-squared per binary metric.
  if (k > 2) {
    for (size_t j : metric_order) {
      if (in.metrics[j].kind != MetricKind::kBinary) continue;
      std::vector<stats::Proportion> props;
      for (const auto& a : arms) props.push_back(a.props[j]);
      ChiSquaredReport o;
      o.metric = in.metrics[j].name;
      if (auto r = stats::ChiSquaredIndependence(props); r.ok()) {
        o.statistic = r->statistic;
        o.df = r->df;
        o.p_value = r->p_value;
      } else {
        o.insufficient_data = std::string(r.status().message());
      }
      report.chi_squared.push_back(std::move(o));
    }
  }

  // Sample-ratio mismatch against the configured weights; when they changed over time, in each
  // period on the units first exposed in it, the report showing the period with the smallest p.
  SrmReport& srm = report.srm;
  for (int a = 0; a < k; ++a) srm.observed.push_back(arms[a].units);
  auto check = [&](const std::vector<int64_t>& observed, const std::vector<double>& weights, SrmReport* out) {
    out->observed = observed;
    auto r = stats::SampleRatioMismatch(observed, weights);
    if (!r.ok()) {
      out->reason = std::string(r.status().message());
      return;
    }
    double total = 0;
    for (double w : weights) total += w;
    out->expected_share.clear();
    for (double w : weights) out->expected_share.push_back(w / total);
    out->checked = true;
    out->chi2 = r->test.statistic;
    out->p_value = r->test.p_value;
    out->mismatch = r->mismatch;
    out->threshold = 0.001;
    out->note = r->note;
  };
  if (!in.weights_known) {
    srm.reason = "no configured weights; give --config or --weights";
  } else if (in.weight_periods.size() > 1) {
    const size_t periods = in.weight_periods.size();
    std::vector<std::vector<int64_t>> observed(periods, std::vector<int64_t>(k, 0));
    // Period p holds the counted units first exposed in [start of p, start of p + 1) (period 0
    // also those before its start): counts before each later period's start, and before the
    // cutoff's end.
    const int64_t cutoff = state.cutoff_us();
    const int64_t end = cutoff == std::numeric_limits<int64_t>::max() ? cutoff : cutoff + 1;
    std::vector<int64_t> bounds;
    for (size_t p = 1; p < periods; ++p) {
      bounds.push_back(std::min(end, std::max(bounds.empty() ? std::numeric_limits<int64_t>::min() : bounds.back(),
                                              in.weight_periods[p].start_us)));
    }
    bounds.push_back(end);
    const auto before = state.CountsBefore(bounds);
    for (size_t p = 0; p < periods; ++p) {
      for (size_t s_arm = 0; s_arm < before[p].size(); ++s_arm) {
        const int arm = report_arm[s_arm];
        if (arm < 0) continue;
        observed[p][static_cast<size_t>(arm)] = before[p][s_arm] - (p > 0 ? before[p - 1][s_arm] : 0);
      }
    }
    int checked = 0;
    std::optional<SrmReport> worst;
    std::string first_reason;
    for (size_t p = 0; p < periods; ++p) {
      int64_t n = 0;
      for (int64_t x : observed[p]) n += x;
      if (n == 0 || static_cast<int>(in.weight_periods[p].weights.size()) != k) continue;
      SrmReport one;
      check(observed[p], in.weight_periods[p].weights, &one);
      if (!one.checked) {
        if (first_reason.empty()) first_reason = one.reason;
        continue;
      }
      ++checked;
      one.period = in.weight_periods[p].start_us > 0 ? StrCat("since ", HumanUtc(in.weight_periods[p].start_us))
                                                     : std::string("from the start");
      if (!worst || one.p_value < worst->p_value) worst = std::move(one);
    }
    if (worst) {
      srm = *std::move(worst);
      srm.period = checked == 1 ? StrCat("the weights in force ", srm.period)
                                : StrCat("weights changed: checked in each of the ", checked,
                                         " weight periods on the units first exposed in it; shown: the period ",
                                         srm.period, ", with the smallest p");
    } else {
      srm.reason = first_reason.empty() ? "no units in any weight period" : first_reason;
    }
  } else {
    std::vector<double> weights;
    for (int a = 0; a < k; ++a) weights.push_back(in.arms[a].weight);
    check(srm.observed, weights, &srm);  // `observed` may be out's own: assigning it to itself is a no-op
  }
  if (srm.period.empty()) srm.period = in.srm_period;
  report.multiple_exposure_units = in.multiple_exposure_units;
  report.outcomes = in.outcomes;

  // Timeline of the primary metric's lift with its confidence sequence (for plots).
  if (state.counted_units() >= 40) {
    // The running per-arm statistics after the first 1/20, 2/20, ... of the units in time
    // order (the counted units are the first ones: they are the mature ones), from the state's
    // prefix sums: a few blocks and partial blocks, not a pass over every unit.
    const size_t j = static_cast<size_t>(in.primary);
    const int slot = (*slots)[j];
    const bool binary = in.metrics[j].kind == MetricKind::kBinary;
    const int kPoints = 20;
    const int64_t total = state.counted_units();
    std::vector<int64_t> ranks;
    for (int c = 1; c <= kPoints; ++c) ranks.push_back(total * c / kPoints);
    const std::vector<AnalysisState::Prefix> prefixes = state.Prefixes(ranks);
    std::vector<std::vector<TimelinePoint>> points(k);
    for (size_t c = 0; c < prefixes.size(); ++c) {
      std::vector<ArmState> running(in.arms.size(), EmptyArm(in));
      for (size_t s_arm = 0; s_arm < prefixes[c].arms.size(); ++s_arm) {
        const int arm = report_arm[s_arm];
        if (arm < 0) continue;
        const AnalysisState::ArmSums& sums = prefixes[c].arms[s_arm];
        ArmState& a = running[static_cast<size_t>(arm)];
        a.units = sums.units;
        if (binary) {
          a.props[j] = stats::Proportion{sums.positives, sums.units};
        } else {
          a.moments[j] = stats::MomentsOf(sums.units, sums.y, sums.y2);
        }
        if (slot >= 0) {
          a.cuped[j] = stats::CupedState{sums.units, sums.y.Value(), sums.y2.Value(), sums.x.Value(), sums.x2.Value(),
                                         sums.xy.Value()};
        }
      }
      for (int t = 0; t < k; ++t) {
        if (t == in.control) continue;
        // The same comparison as the report's (CUPED-adjusted when configured), on the units so far.
        auto r = CompareAdjusted(in, *slots, running, j, t).comparison;
        if (!r.ok() || !r->lift || !(r->lift_variance > 0)) continue;
        auto seq = stats::MixtureSequentialTest(*r->lift, r->lift_variance, running[in.control].units + running[t].units,
                                                in.alpha, in.sequential_tuning_n);
        if (!seq.ok()) continue;
        points[t].push_back({ranks[c], prefixes[c].last_ts_us, *r->lift, ToInterval(seq->ci)});
      }
    }
    for (int t = 0; t < k; ++t) {
      if (t == in.control) continue;
      report.timeline.push_back({in.arms[t].name, report.primary_metric, std::move(points[t])});
    }
  }

  // Shadow traffic: the shadow model against the served one on the same requests (paired).
  for (const ShadowPairs& g : in.shadows) {
    ShadowEvaluation e;
    e.arm = g.arm;
    e.shadow_arm = g.shadow_arm;
    e.requests = static_cast<int64_t>(g.labels.size());
    for (int label : g.labels) e.positives += label;
    auto r = stats::ComparePairedModels(g.scores, g.shadow_scores, g.labels, in.alpha);
    if (!r.ok()) {
      e.insufficient_data = std::string(r.status().message());
      report.shadow_evaluation.push_back(std::move(e));
      continue;
    }
    e.auc = r->a.value;
    e.shadow_auc = r->b.value;
    e.auc_diff = r->auc_diff;
    e.auc_diff_ci = ToInterval(r->auc_diff_ci);
    e.auc_p_value = r->auc_p_value;
    e.log_loss = r->log_loss_a;
    e.shadow_log_loss = r->log_loss_b;
    e.log_loss_diff = r->log_loss_diff;
    e.log_loss_diff_ci = ToInterval(r->log_loss_diff_ci);
    e.log_loss_p_value = r->log_loss_p_value;
    const bool auc_worse = e.auc_p_value < in.alpha && e.auc_diff < 0;
    const bool loss_worse = e.log_loss_p_value < in.alpha && e.log_loss_diff > 0;
    const bool auc_better = e.auc_p_value < in.alpha && e.auc_diff > 0;
    const bool loss_better = e.log_loss_p_value < in.alpha && e.log_loss_diff < 0;
    // The ranking decides when the two disagree: a model that orders requests significantly
    // better is not refused for a worse calibration (log loss), and one that orders them
    // significantly worse is refused whatever its log loss. Log loss alone decides when the
    // AUC difference is not significant.
    e.shadow_worse = auc_worse || (loss_worse && !auc_better);
    e.shadow_better = auc_better || (loss_better && !auc_worse);
    report.shadow_evaluation.push_back(std::move(e));
  }
  // Bandits: traffic followed the outcomes, so no fixed-horizon (or sequential) comparison is
  // reported; the bandit section estimates the rates by IPW and ranks the arms instead.
  if (in.bandit) {
    report.bandit = BanditSection(in, state, state_arm);
    report.comparisons.clear();
    report.chi_squared.clear();
    report.timeline.clear();
  }

  // The decision, by the one rule (decision.h); serving guardrails are added by callers that
  // have the gateway's counters.
  report.decision = Decide(report, DecisionPolicy{report.primary_metric, in.alpha});
  return report;
}

}  // namespace

}  // namespace abgate::analysis
