// Anytime-valid inference: the mixture sequential probability ratio test (mSPRT) with a
// normal mixture, and its dual confidence sequence, for an asymptotically normal effect
// estimate. Results stay valid however often they are looked at.
//
// With n units, an estimate `theta` whose variance is V = s2 / n, and mixture variance
// tau^2 = s2 * rho^2, the mixture likelihood ratio is
//   Lambda = (1 + n rho^2)^(-1/2) * exp(theta^2 n^2 rho^2 / (2 s2 (1 + n rho^2)))
// (Johari, Pekelis, Walsh 2017, "Always valid inference"; Robbins 1970). The confidence
// sequence {theta : Lambda < 1/alpha} has half-width
//   sqrt(s2) * sqrt(2 (n rho^2 + 1) / (n^2 rho^2) * log(sqrt(n rho^2 + 1) / alpha)),
// the same boundary as GrowthBook's asymptotic confidence sequences (Waudby-Smith et al.
// 2023), with rho chosen so the boundary is tightest at `tuning_n` units:
//   rho = sqrt((-2 log alpha + log(-2 log alpha + 1)) / tuning_n).
// Pure and thread-safe.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "stats/tests.h"

namespace abgate::stats {

struct SequentialResult {
  double p_value = 1;  // always-valid p-value at this look (min(1, 1 / Lambda))
  Interval ci;         // confidence sequence for the effect at this look
};

// `estimate` with variance `variance` from `n` units in total. tuning_n > 0 (default 5000,
// as GrowthBook). FailedPrecondition when n < 2 or variance <= 0.
absl::StatusOr<SequentialResult> MixtureSequentialTest(double estimate, double variance, int64_t n,
                                                       double alpha = 0.05, double tuning_n = 5000);

}  // namespace abgate::stats
