// Power, sample size and minimum detectable effect for two-sided tests of two independent
// arms of equal size (normal approximation, unpooled variances). Pure and thread-safe.
//   proportions: n = (z_{1-alpha/2} + z_{power})^2 (p1 q1 + p2 q2) / (p2 - p1)^2
//   means:       n = 2 (z_{1-alpha/2} + z_{power})^2 sigma^2 / delta^2
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"

namespace abgate::stats {

// Units per arm to detect a change from `baseline` to `target` rate.
absl::StatusOr<int64_t> SampleSizeProportions(double baseline, double target, double alpha = 0.05, double power = 0.8);
// Power with `n_per_arm` units per arm.
absl::StatusOr<double> PowerProportions(double baseline, double target, int64_t n_per_arm, double alpha = 0.05);
// Smallest absolute increase over `baseline` detectable with `n_per_arm` units per arm.
absl::StatusOr<double> MdeProportions(double baseline, int64_t n_per_arm, double alpha = 0.05, double power = 0.8);

absl::StatusOr<int64_t> SampleSizeMeans(double sigma, double delta, double alpha = 0.05, double power = 0.8);
absl::StatusOr<double> PowerMeans(double sigma, double delta, int64_t n_per_arm, double alpha = 0.05);
absl::StatusOr<double> MdeMeans(double sigma, int64_t n_per_arm, double alpha = 0.05, double power = 0.8);

}  // namespace abgate::stats
