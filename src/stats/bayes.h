// Bayesian chance to beat control. Pure and thread-safe.
#pragma once

#include "absl/status/statusor.h"
#include "stats/moments.h"

namespace abgate::stats {

// P(p_treatment > p_control) under independent Beta(1 + successes, 1 + failures) posteriors
// (uniform priors), computed exactly (Evan Miller's closed form, a sum over the treatment's
// successes in log space). Above 2,000,000 treatment successes the sum is replaced by the
// normal approximation of the two Beta posteriors, whose error there is below 1e-6.
absl::StatusOr<double> ChanceToBeatBinomial(const Proportion& control, const Proportion& treatment);

// P(mu_treatment > mu_control) with Gaussian posteriors N(mean, variance of the mean)
// (flat priors).
absl::StatusOr<double> ChanceToBeatGaussian(const Moments& control, const Moments& treatment);

}  // namespace abgate::stats
