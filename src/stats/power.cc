#include "stats/power.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/status_macros.h"
#include "common/strings.h"
#include "stats/distributions.h"
#include "stats/sequential.h"

namespace abgate::stats {
namespace {

// Everything Plan needs once the input is validated: shares, critical values and variances.
struct Setup {
  PlanInput in;
  std::vector<double> shares;  // weights / sum
  double alpha1 = 0.05;        // per comparison
  double z_alpha = 0;          // z_{1 - alpha1/2}
  double z_power = 0;          // z_{power}
};

bool IsRate(double p) { return p > 0 && p < 1; }

// Per-unit variance of an arm whose true value is baseline + delta.
double UnitVariance(const Setup& s, double delta) {
  if (s.in.metric == PlanMetric::kMean) return s.in.sd * s.in.sd;
  const double p = s.in.baseline + delta;
  return p * (1 - p);
}

// For each comparison with the control at the given real arm sizes: the standard error of the
// estimate and the critical value h (reject when |estimate| > h). Returns the margin
// min_i (|delta| - h_i - z_power se_i) (>= 0 means the power is reached) and the smallest power.
struct Evaluation {
  double margin = std::numeric_limits<double>::infinity();
  double power = 1;
};

Evaluation Evaluate(const Setup& s, const std::vector<double>& n, double delta, bool sequential) {
  Evaluation out;
  const double v_c = UnitVariance(s, 0), v_t = UnitVariance(s, delta);
  for (size_t i = 1; i < n.size(); ++i) {
    const double var = v_c / n[0] + v_t / n[i];
    const double se = std::sqrt(var);
    double h = s.z_alpha * se;
    if (sequential) {
      // The half-width of the confidence sequence over the pair's units, at alpha1: computed
      // by the test itself so the plan and the analysis cannot drift apart.
      const auto pair = std::max<int64_t>(2, std::llround(n[0] + n[i]));
      auto seq = MixtureSequentialTest(0, var, pair, s.alpha1, s.in.sequential_tuning_n);
      h = seq.ok() ? seq->ci.high : std::numeric_limits<double>::infinity();
    }
    const double d = std::fabs(delta);
    out.margin = std::min(out.margin, d - h - s.z_power * se);
    out.power = std::min(out.power, NormalCdf((d - h) / se) + NormalCdf((-d - h) / se));
  }
  return out;
}

std::vector<double> Sizes(const Setup& s, double total) {
  std::vector<double> n;
  for (double w : s.shares) n.push_back(w * total);
  return n;
}

std::vector<int64_t> Rounded(const std::vector<double>& n, bool up) {
  std::vector<int64_t> out;
  // 1e-9: a product like 0.5 * 2 * 1570 must not become 1571.
  for (double x : n) out.push_back(static_cast<int64_t>(up ? std::ceil(x - 1e-9 * x) : std::llround(x)));
  return out;
}

PlanDesign Design(const Setup& s, std::vector<int64_t> units, double delta, bool sequential) {
  PlanDesign d;
  d.units_per_arm = std::move(units);
  std::vector<double> n;
  for (int64_t u : d.units_per_arm) {
    d.total_units += u;
    n.push_back(static_cast<double>(u));
  }
  d.power = Evaluate(s, n, delta, sequential).power;
  d.mde = std::fabs(delta);
  return d;
}

// Smallest total N (real) whose margin is >= 0, by bisection from a size known to fall short.
absl::StatusOr<double> SolveTotal(const Setup& s, double delta, double low, bool sequential) {
  double high = std::max(low, 4.0);
  while (Evaluate(s, Sizes(s, high), delta, sequential).margin < 0) {
    low = high;
    high *= 2;
    if (high > 1e15) return absl::FailedPreconditionError("the effect is too small to detect with any sample size");
  }
  for (int i = 0; i < 200 && high - low > 1e-7 * high; ++i) {
    const double mid = 0.5 * (low + high);
    (Evaluate(s, Sizes(s, mid), delta, sequential).margin < 0 ? low : high) = mid;
  }
  return high;
}

// Smallest effect (an increase) whose margin is >= 0 with these real sizes, by bisection.
absl::StatusOr<double> SolveMde(const Setup& s, const std::vector<double>& n, bool sequential) {
  double low = 0, high;
  if (s.in.metric == PlanMetric::kProportion) {
    high = (1 - s.in.baseline) * (1 - 1e-12);
    if (Evaluate(s, n, high, sequential).margin < 0) {
      return absl::FailedPreconditionError("no increase below a rate of 1 is detectable at this size");
    }
  } else {
    high = s.in.sd;
    while (Evaluate(s, n, high, sequential).margin < 0) high *= 2;
  }
  for (int i = 0; i < 200 && high - low > 1e-13 * high; ++i) {
    const double mid = 0.5 * (low + high);
    (Evaluate(s, n, mid, sequential).margin < 0 ? low : high) = mid;
  }
  return high;
}

}  // namespace

absl::StatusOr<PlanResult> Plan(const PlanInput& in) {
  if (!(in.alpha > 0 && in.alpha < 1)) return absl::InvalidArgumentError("alpha must be in (0, 1)");
  if (!(in.power > 0 && in.power < 1)) return absl::InvalidArgumentError("power must be in (0, 1)");
  if (in.weights.size() < 2) return absl::InvalidArgumentError("a plan needs at least two arms (control first)");
  double sum = 0;
  for (double w : in.weights) {
    if (!(w > 0) || !std::isfinite(w)) return absl::InvalidArgumentError("weights must be positive");
    sum += w;
  }
  if (in.metric == PlanMetric::kProportion && !IsRate(in.baseline)) {
    return absl::InvalidArgumentError("the baseline rate must be in (0, 1)");
  }
  if (in.metric == PlanMetric::kMean && (!(in.sd > 0) || !std::isfinite(in.sd) || !std::isfinite(in.baseline))) {
    return absl::InvalidArgumentError("the standard deviation must be positive");
  }
  if (in.mde) {
    if (*in.mde == 0 || !std::isfinite(*in.mde)) return absl::InvalidArgumentError("the effect must be non-zero");
    if (in.metric == PlanMetric::kProportion && !IsRate(in.baseline + *in.mde)) {
      return absl::InvalidArgumentError(StrCat("baseline + effect = ", in.baseline + *in.mde, " is not a rate in (0, 1)"));
    }
  }
  if (!in.mde && !in.total_units) return absl::InvalidArgumentError("give the effect to detect, the units, or both");
  if (in.total_units && *in.total_units < 2 * static_cast<int64_t>(in.weights.size())) {
    return absl::InvalidArgumentError("the total units must give each arm at least two units");
  }
  if (!(in.sequential_tuning_n > 0)) return absl::InvalidArgumentError("the sequential tuning must be positive");

  Setup s{in, {}, 0, 0, 0};
  for (double w : in.weights) s.shares.push_back(w / sum);
  PlanResult out;
  out.comparisons = static_cast<int>(in.weights.size()) - 1;
  s.alpha1 = out.alpha_per_comparison = in.alpha / out.comparisons;
  s.z_alpha = NormalQuantile(1 - s.alpha1 / 2);
  s.z_power = NormalQuantile(in.power);

  if (in.total_units) {
    const auto n = Sizes(s, static_cast<double>(*in.total_units));
    const auto units = Rounded(n, false);
    if (in.mde) {  // power at this size
      out.fixed = Design(s, units, *in.mde, false);
      out.sequential = Design(s, units, *in.mde, true);
    } else {  // MDE at this size
      ABGATE_ASSIGN_OR_RETURN(const double fixed, SolveMde(s, n, false));
      ABGATE_ASSIGN_OR_RETURN(const double seq, SolveMde(s, n, true));
      out.fixed = Design(s, units, fixed, false);
      out.sequential = Design(s, units, seq, true);
    }
    out.fixed.total_units = out.sequential.total_units = *in.total_units;
    return out;
  }

  // Sample size: the classic closed form for the fixed test (the worst comparison decides)…
  const double delta = *in.mde;
  const double z = s.z_alpha + s.z_power;
  double total = 0;
  for (size_t i = 1; i < s.shares.size(); ++i) {
    const double f = UnitVariance(s, 0) / s.shares[0] + UnitVariance(s, delta) / s.shares[i];
    total = std::max(total, z * z * f / (delta * delta));
  }
  out.fixed = Design(s, Rounded(Sizes(s, total), true), delta, false);
  // …and a search for the sequential one, which needs more: its boundary is wider at every n.
  ABGATE_ASSIGN_OR_RETURN(const double seq_total, SolveTotal(s, delta, total, true));
  out.sequential = Design(s, Rounded(Sizes(s, seq_total), true), delta, true);
  return out;
}

namespace {

// Two equal arms; the effect and the size are set only when given.
PlanInput TwoArms(PlanMetric metric, double baseline, double sd, std::optional<double> mde, double alpha, double power,
                  std::optional<int64_t> n_per_arm) {
  PlanInput in;
  in.metric = metric;
  in.baseline = baseline;
  in.sd = sd;
  in.mde = mde;
  in.alpha = alpha;
  in.power = power;
  if (n_per_arm) in.total_units = 2 * *n_per_arm;
  return in;
}

}  // namespace

absl::StatusOr<int64_t> SampleSizeProportions(double baseline, double target, double alpha, double power) {
  ABGATE_ASSIGN_OR_RETURN(const auto plan,
                          Plan(TwoArms(PlanMetric::kProportion, baseline, 0, target - baseline, alpha, power, {})));
  return plan.fixed.units_per_arm[0];
}

absl::StatusOr<double> PowerProportions(double baseline, double target, int64_t n_per_arm, double alpha) {
  ABGATE_ASSIGN_OR_RETURN(const auto plan,
                          Plan(TwoArms(PlanMetric::kProportion, baseline, 0, target - baseline, alpha, 0.8, n_per_arm)));
  return plan.fixed.power;
}

absl::StatusOr<double> MdeProportions(double baseline, int64_t n_per_arm, double alpha, double power) {
  ABGATE_ASSIGN_OR_RETURN(const auto plan, Plan(TwoArms(PlanMetric::kProportion, baseline, 0, {}, alpha, power, n_per_arm)));
  return plan.fixed.mde;
}

absl::StatusOr<int64_t> SampleSizeMeans(double sigma, double delta, double alpha, double power) {
  ABGATE_ASSIGN_OR_RETURN(const auto plan, Plan(TwoArms(PlanMetric::kMean, 0, sigma, delta, alpha, power, {})));
  return plan.fixed.units_per_arm[0];
}

absl::StatusOr<double> PowerMeans(double sigma, double delta, int64_t n_per_arm, double alpha) {
  ABGATE_ASSIGN_OR_RETURN(const auto plan, Plan(TwoArms(PlanMetric::kMean, 0, sigma, delta, alpha, 0.8, n_per_arm)));
  return plan.fixed.power;
}

absl::StatusOr<double> MdeMeans(double sigma, int64_t n_per_arm, double alpha, double power) {
  ABGATE_ASSIGN_OR_RETURN(const auto plan, Plan(TwoArms(PlanMetric::kMean, 0, sigma, {}, alpha, power, n_per_arm)));
  return plan.fixed.mde;
}

}  // namespace abgate::stats
