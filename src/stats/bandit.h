// Multi-armed bandit allocation and its analysis. Pure; thread-compatible (the random source is
// the caller's).
//
// ThompsonWeights turns per-arm successes and trials of a binary metric into traffic weights:
// each arm's probability of being the best under independent Beta(1 + s, 1 + n - s) posteriors
// (Thompson 1933; batched "probability matching", Scott 2010, doi:10.1002/asmb.874), estimated by
// Monte Carlo, then mixed with a floor so every arm keeps at least `floor` of the traffic:
//   w_i = floor + (1 - k floor) P(arm i is best).
// The floor keeps every assignment probability away from 0, which the IPW analysis needs.
//
// IpwMeans estimates each arm's mean outcome from adaptively assigned units by inverse-propensity
// weighting (Hájek's self-normalised form): mu_a = sum(y / p) / sum(1 / p) over the units
// assigned to a with probability p at the time, with the linearised variance
//   Var(mu_a) = sum((y - mu_a)^2 / p^2) / (sum(1 / p))^2.
// Each period of constant weights then counts in proportion to its whole traffic, undoing the
// bias of plain means when the bandit starves an arm after an unlucky start (Hadad et al. 2021,
// doi:10.1073/pnas.2014602118, discuss the same estimator and its limits). Intervals are normal
// approximations for a given horizon: fixed-horizon p-values of a standard test do not apply to
// adaptively assigned traffic.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "common/random.h"
#include "stats/tests.h"

namespace abgate::stats {

struct BanditArm {
  int64_t trials = 0;
  int64_t successes = 0;
};

// Weights summing to 1, one per arm. InvalidArgument for fewer than two arms, successes outside
// [0, trials], floor outside [0, 1/k], or draws < 1.
absl::StatusOr<std::vector<double>> ThompsonWeights(std::span<const BanditArm> arms, double floor, int draws,
                                                    common::Xoshiro256& rng);

// One unit: its arm, its outcome and the probability with which it was assigned to that arm.
struct PropensityObservation {
  int arm = 0;
  double value = 0;
  double propensity = 1;  // in (0, 1]
};

struct IpwEstimate {
  int64_t units = 0;
  double mean = 0;
  double variance = 0;  // of `mean`
  Interval ci;
};

// Per-arm estimates (arms 0..arms-1). InvalidArgument for an arm index out of range or a
// propensity outside (0, 1]; FailedPrecondition when an arm has fewer than 2 units.
absl::StatusOr<std::vector<IpwEstimate>> IpwMeans(std::span<const PropensityObservation> units, int arms,
                                                  double alpha = 0.05);

// IpwMeans of one arm from sums over its units (y the value, p the propensity): n, sum 1/p,
// sum y/p, sum y^2/p^2, sum y/p^2 and sum 1/p^2; the variance's sum((y - mu)^2 / p^2) expanded
// in them. Sums that can be kept up to date as units come and go. FailedPrecondition with
// fewer than 2 units.
struct IpwSums {
  int64_t n = 0;
  double w = 0, wy = 0, wyy2 = 0, wy2 = 0, w2 = 0;
};
absl::StatusOr<IpwEstimate> IpwOfSums(const IpwSums& sums, double alpha = 0.05);

}  // namespace abgate::stats
