// CUPED variance reduction (Deng, Xu, Kohavi, Walker 2013, "Improving the sensitivity of
// online controlled experiments by utilizing pre-experiment data"): with a pre-period
// covariate X per unit, Y_cv = Y - theta (X - mean X) where theta = cov(X, Y) / var(X) pooled
// over all arms. The per-arm state is mergeable. Pure and thread-safe.
#pragma once

#include <cstdint>
#include <span>

#include "absl/status/statusor.h"
#include "stats/moments.h"
#include "stats/tests.h"

namespace abgate::stats {

struct CupedState {
  int64_t n = 0;
  double sum_y = 0, sum_y2 = 0, sum_x = 0, sum_x2 = 0, sum_xy = 0;
  void Add(double y, double x) {
    ++n;
    sum_y += y;
    sum_y2 += y * y;
    sum_x += x;
    sum_x2 += x * x;
    sum_xy += x * y;
  }
  void Combine(const CupedState& o) {
    n += o.n;
    sum_y += o.sum_y;
    sum_y2 += o.sum_y2;
    sum_x += o.sum_x;
    sum_x2 += o.sum_x2;
    sum_xy += o.sum_xy;
  }
};

struct CupedResult {
  double theta = 0;
  Comparison comparison;     // Welch test on the adjusted means
  Comparison unadjusted;     // Welch test on the raw means, for reference
  double variance_reduction = 0;  // 1 - Var(adjusted diff) / Var(raw diff)
  // Per arm: the adjusted mean, mean Y - theta (mean X - grand mean X), with the sample
  // variance of Y - theta X (for chance to beat and sequential tests on the adjusted effect).
  Moments control_adjusted, treatment_adjusted;
};

// FailedPrecondition when an arm has < 2 units or X has no variance.
absl::StatusOr<CupedResult> CupedWelchTest(const CupedState& control, const CupedState& treatment,
                                           double alpha = 0.05);

}  // namespace abgate::stats
