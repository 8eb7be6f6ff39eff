#include "stats/cuped.h"

#include <cmath>

namespace abgate::stats {
namespace {

// Adjusted Moments for one arm: mean Y - theta (mean X - grand mean X), and the sample
// variance of Y - theta X.
Moments Adjusted(const CupedState& s, double theta, double grand_mean_x) {
  const double n = static_cast<double>(s.n);
  const double my = s.sum_y / n, mx = s.sum_x / n;
  const double vy = (s.sum_y2 - n * my * my) / (n - 1);
  const double vx = (s.sum_x2 - n * mx * mx) / (n - 1);
  const double cxy = (s.sum_xy - n * mx * my) / (n - 1);
  const double v = std::max(0.0, vy + theta * theta * vx - 2 * theta * cxy);
  return Moments::FromSummary(s.n, my - theta * (mx - grand_mean_x), v);
}

Moments Raw(const CupedState& s) {
  const double n = static_cast<double>(s.n);
  const double my = s.sum_y / n;
  return Moments::FromSummary(s.n, my, std::max(0.0, (s.sum_y2 - n * my * my) / (n - 1)));
}

}  // namespace

absl::StatusOr<CupedResult> CupedWelchTest(const CupedState& control, const CupedState& treatment, double alpha) {
  if (control.n < 2 || treatment.n < 2) return absl::FailedPreconditionError("CUPED needs at least 2 units per arm");
  CupedState all = control;
  all.Combine(treatment);
  const double n = static_cast<double>(all.n);
  const double mx = all.sum_x / n, my = all.sum_y / n;
  const double var_x = all.sum_x2 / n - mx * mx;
  if (!(var_x > 0)) return absl::FailedPreconditionError("CUPED needs a covariate with variance");
  CupedResult out;
  out.theta = (all.sum_xy / n - mx * my) / var_x;
  out.control_adjusted = Adjusted(control, out.theta, mx);
  out.treatment_adjusted = Adjusted(treatment, out.theta, mx);
  auto adjusted = WelchTTest(out.control_adjusted, out.treatment_adjusted, alpha);
  if (!adjusted.ok()) return adjusted.status();
  out.comparison = *adjusted;
  out.comparison.test = "welch_t_cuped";
  auto raw = WelchTTest(Raw(control), Raw(treatment), alpha);
  if (!raw.ok()) return raw.status();
  out.unadjusted = *raw;
  if (raw->diff_variance > 0) out.variance_reduction = 1 - adjusted->diff_variance / raw->diff_variance;
  return out;
}

}  // namespace abgate::stats
