// Mergeable per-arm summary states. Each has Add (one observation), Combine (merge a shard or
// a time window; exact for counts, Chan et al. 1979 for the centred moments) and accessors
// that refuse too little data instead of returning NaN. Value types; not thread-safe.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"

namespace abgate::stats {

// Count, mean and the centred second moment M2 = sum (x - mean)^2 (Welford's update, stable
// where sum/sum-of-squares cancels).
struct Moments {
  int64_t n = 0;
  double mean = 0;
  double m2 = 0;

  void Add(double x) {
    ++n;
    const double delta = x - mean;
    mean += delta / static_cast<double>(n);
    m2 += delta * (x - mean);
  }
  // Chan, Golub, LeVeque (1979), "Updating formulae and a pairwise algorithm for computing
  // sample variances": exact merge of two partial states.
  void Combine(const Moments& o) {
    if (o.n == 0) return;
    if (n == 0) {
      *this = o;
      return;
    }
    const double total = static_cast<double>(n + o.n);
    const double delta = o.mean - mean;
    mean += delta * static_cast<double>(o.n) / total;
    m2 += o.m2 + delta * delta * static_cast<double>(n) * static_cast<double>(o.n) / total;
    n += o.n;
  }
  static Moments FromSummary(int64_t n, double mean, double sample_variance) {
    return {n, mean, sample_variance * static_cast<double>(n - 1)};
  }
  // Sample variance (n - 1 denominator). FailedPrecondition with fewer than 2 observations.
  absl::StatusOr<double> Variance() const;
  // Variance of the mean, Variance() / n.
  absl::StatusOr<double> VarianceOfMean() const;
};

// Successes out of trials, for binary metrics.
struct Proportion {
  int64_t successes = 0;
  int64_t trials = 0;

  void Add(bool success) {
    ++trials;
    successes += success;
  }
  void Combine(const Proportion& o) {
    successes += o.successes;
    trials += o.trials;
  }
  // FailedPrecondition with no trials.
  absl::StatusOr<double> Rate() const;
  // p(1 - p) / n. FailedPrecondition with no trials.
  absl::StatusOr<double> VarianceOfMean() const;
  // The same data as Moments of 0/1 values.
  Moments AsMoments() const;
};

}  // namespace abgate::stats
