#include "stats/tests.h"

#include <cmath>
#include <vector>

#include "common/strings.h"
#include "stats/distributions.h"

namespace abgate::stats {
namespace {

absl::Status CheckAlpha(double alpha) {
  if (!(alpha > 0 && alpha < 1)) return absl::InvalidArgumentError(StrCat("alpha must be in (0, 1), got ", alpha));
  return absl::OkStatus();
}

// Fills diff/lift and their CIs from two arm means and the variances of those means.
void FillEffects(double c, double t, double var_c, double var_t, double z_crit, Comparison& out) {
  out.control_mean = c;
  out.treatment_mean = t;
  out.diff = t - c;
  out.diff_variance = var_c + var_t;
  const double se = std::sqrt(out.diff_variance);
  out.diff_ci = {out.diff - z_crit * se, out.diff + z_crit * se};
  if (c != 0) {
    out.lift = out.diff / c;
    out.lift_variance = var_t / (c * c) + t * t * var_c / (c * c * c * c);
    const double lse = std::sqrt(out.lift_variance);
    out.lift_ci = Interval{*out.lift - z_crit * lse, *out.lift + z_crit * lse};
  }
}

}  // namespace

absl::StatusOr<Comparison> TwoProportionZTest(const Proportion& control, const Proportion& treatment, double alpha) {
  if (auto s = CheckAlpha(alpha); !s.ok()) return s;
  auto pc = control.Rate();
  if (!pc.ok()) return pc.status();
  auto pt = treatment.Rate();
  if (!pt.ok()) return pt.status();
  const double nc = static_cast<double>(control.trials), nt = static_cast<double>(treatment.trials);
  const double pooled = static_cast<double>(control.successes + treatment.successes) / (nc + nt);
  const double se_pooled = std::sqrt(pooled * (1 - pooled) * (1 / nc + 1 / nt));
  if (!(se_pooled > 0)) {
    return absl::FailedPreconditionError("no variance: every unit in both arms has the same outcome");
  }
  Comparison out;
  out.test = "two_proportion_z";
  FillEffects(*pc, *pt, *pc * (1 - *pc) / nc, *pt * (1 - *pt) / nt, NormalQuantile(1 - alpha / 2), out);
  out.statistic = (*pt - *pc) / se_pooled;
  out.p_value = TwoSidedNormalP(out.statistic);
  return out;
}

absl::StatusOr<Comparison> WelchTTest(const Moments& control, const Moments& treatment, double alpha) {
  if (auto s = CheckAlpha(alpha); !s.ok()) return s;
  auto vc = control.VarianceOfMean();
  if (!vc.ok()) return vc.status();
  auto vt = treatment.VarianceOfMean();
  if (!vt.ok()) return vt.status();
  const double se2 = *vc + *vt;
  if (!(se2 > 0)) return absl::FailedPreconditionError("no variance in either arm");
  Comparison out;
  out.test = "welch_t";
  // Welch–Satterthwaite: df = (vc + vt)^2 / (vc^2 / (nc - 1) + vt^2 / (nt - 1)).
  out.df = se2 * se2 /
           (*vc * *vc / static_cast<double>(control.n - 1) + *vt * *vt / static_cast<double>(treatment.n - 1));
  // Intervals use the t critical value at the Welch df, like scipy's ttest_ind(...).confidence_interval.
  FillEffects(control.mean, treatment.mean, *vc, *vt, StudentTQuantile(1 - alpha / 2, out.df), out);
  out.statistic = (treatment.mean - control.mean) / std::sqrt(se2);
  out.p_value = TwoSidedStudentTP(out.statistic, out.df);
  return out;
}

absl::StatusOr<ChiSquared> ChiSquaredIndependence(std::span<const Proportion> arms) {
  if (arms.size() < 2) return absl::FailedPreconditionError("a chi-squared test needs at least 2 arms");
  double total = 0, successes = 0;
  for (const auto& a : arms) {
    if (a.trials <= 0) return absl::FailedPreconditionError("every arm needs at least 1 trial");
    total += static_cast<double>(a.trials);
    successes += static_cast<double>(a.successes);
  }
  const double rate = successes / total;
  if (rate <= 0 || rate >= 1) {
    return absl::FailedPreconditionError("no variance: every unit has the same outcome");
  }
  ChiSquared out;
  for (const auto& a : arms) {
    const double n = static_cast<double>(a.trials);
    const double e1 = n * rate, e0 = n * (1 - rate);
    const double o1 = static_cast<double>(a.successes), o0 = n - o1;
    out.statistic += (o1 - e1) * (o1 - e1) / e1 + (o0 - e0) * (o0 - e0) / e0;
  }
  out.df = static_cast<int>(arms.size()) - 1;
  out.p_value = ChiSquaredSf(out.statistic, out.df);
  return out;
}

absl::StatusOr<ChiSquared> ChiSquaredGoodnessOfFit(std::span<const int64_t> observed,
                                                   std::span<const double> expected_shares) {
  if (observed.size() != expected_shares.size()) {
    return absl::InvalidArgumentError("observed and expected need the same number of categories");
  }
  if (observed.size() < 2) return absl::FailedPreconditionError("goodness of fit needs at least 2 categories");
  double total = 0, share_sum = 0;
  for (size_t i = 0; i < observed.size(); ++i) {
    if (observed[i] < 0) return absl::InvalidArgumentError("observed counts must be >= 0");
    if (!(expected_shares[i] > 0) || !std::isfinite(expected_shares[i])) {
      return absl::InvalidArgumentError("expected shares must be positive");
    }
    total += static_cast<double>(observed[i]);
    share_sum += expected_shares[i];
  }
  if (total <= 0) return absl::FailedPreconditionError("goodness of fit needs at least 1 observation");
  ChiSquared out;
  for (size_t i = 0; i < observed.size(); ++i) {
    const double e = total * expected_shares[i] / share_sum;
    const double d = static_cast<double>(observed[i]) - e;
    out.statistic += d * d / e;
  }
  out.df = static_cast<int>(observed.size()) - 1;
  out.p_value = ChiSquaredSf(out.statistic, out.df);
  return out;
}

absl::StatusOr<SampleRatio> SampleRatioMismatch(std::span<const int64_t> units, std::span<const double> weights,
                                                double threshold) {
  if (units.size() != weights.size()) return absl::InvalidArgumentError("one weight per arm is needed");
  std::vector<int64_t> observed;
  std::vector<double> shares;
  SampleRatio out;
  for (size_t i = 0; i < units.size(); ++i) {
    if (weights[i] > 0) {
      observed.push_back(units[i]);
      shares.push_back(weights[i]);
    } else if (units[i] > 0) {
      out.mismatch = true;
      out.note = StrCat("arm ", i, " has weight 0 but ", units[i], " units");
    }
  }
  if (out.mismatch) {
    out.test.p_value = 0;
    out.test.df = static_cast<int>(shares.size()) - 1;
    return out;
  }
  if (observed.size() < 2) {
    out.note = "fewer than 2 arms with positive weight: nothing to compare";
    return out;
  }
  auto test = ChiSquaredGoodnessOfFit(observed, shares);
  if (!test.ok()) return test.status();
  out.test = *test;
  out.mismatch = test->p_value < threshold;
  return out;
}

}  // namespace abgate::stats
