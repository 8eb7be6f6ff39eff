// Frequentist comparisons of a treatment arm against control, and chi-squared tests.
//
// Conventions: every difference is treatment - control; lift is (treatment - control) /
// control; confidence intervals are two-sided at 1 - alpha. Lift CIs use the delta method
// (Var(lift) ≈ Var(t)/c^2 + t^2 Var(c)/c^4 for independent arm means c, t). Too little data or
// zero variance is FailedPrecondition, never NaN. Pure and thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "stats/moments.h"

namespace abgate::stats {

struct Interval {
  double low = 0;
  double high = 0;
};

struct Comparison {
  std::string test;  // "two_proportion_z" or "welch_t"
  double control_mean = 0;
  double treatment_mean = 0;
  double diff = 0;
  Interval diff_ci;
  std::optional<double> lift;  // absent when the control mean is 0
  std::optional<Interval> lift_ci;
  double statistic = 0;
  double df = 0;  // Welch–Satterthwaite degrees of freedom; 0 for z tests
  double p_value = 1;
  double diff_variance = 0;  // variance of `diff`, for sequential tests
  double lift_variance = 0;  // delta-method variance of `lift` (0 when absent)
};

// Pooled two-proportion z-test (the statistic and p-value use the pooled rate, as
// statsmodels' proportions_ztest does); the diff CI uses the unpooled standard error.
absl::StatusOr<Comparison> TwoProportionZTest(const Proportion& control, const Proportion& treatment,
                                              double alpha = 0.05);

// Welch's unequal-variance t-test with Welch–Satterthwaite degrees of freedom.
absl::StatusOr<Comparison> WelchTTest(const Moments& control, const Moments& treatment, double alpha = 0.05);

struct ChiSquared {
  double statistic = 0;
  int df = 0;
  double p_value = 1;
};

// Pearson chi-squared test of independence on the 2 x k table (successes, failures) per arm,
// without continuity correction.
absl::StatusOr<ChiSquared> ChiSquaredIndependence(std::span<const Proportion> arms);

// Pearson goodness of fit of `observed` counts against `expected_shares` (normalised here).
absl::StatusOr<ChiSquared> ChiSquaredGoodnessOfFit(std::span<const int64_t> observed,
                                                   std::span<const double> expected_shares);

struct SampleRatio {
  ChiSquared test;
  bool mismatch = false;
  std::string note;  // set when zero-weight arms affected the verdict
};

// Sample-ratio mismatch: goodness of fit of units per arm against configured weights, flagged
// at p < threshold (0.001 by default). Arms with weight 0 are left out of the test when they
// have no units; a unit in a zero-weight arm is a mismatch by itself (p = 0), since the split
// cannot produce it.
absl::StatusOr<SampleRatio> SampleRatioMismatch(std::span<const int64_t> units,
                                                std::span<const double> weights, double threshold = 0.001);

}  // namespace abgate::stats
