// Model quality per arm when a score and a binary label are known: ROC AUC with DeLong's
// variance, a z-test for two independent AUCs, log loss and expected calibration error.
// Pure and thread-safe (inputs are read-only spans).
#pragma once

#include <span>

#include "absl/status/statusor.h"
#include "stats/tests.h"

namespace abgate::stats {

struct Auc {
  double value = 0;
  double variance = 0;  // DeLong et al. (1988)
  Interval ci;          // value ± z se, clipped to [0, 1]
  int64_t positives = 0;
  int64_t negatives = 0;
};

// AUC = P(score of a positive > score of a negative) + 0.5 P(tie), from midranks, with
// DeLong's structural-component variance computed in O(n log n) (Sun & Xu 2014, "Fast
// implementation of DeLong's algorithm", IEEE SPL 21(11)). Needs >= 2 positives and >= 2
// negatives (FailedPrecondition otherwise). Labels are 0/1.
absl::StatusOr<Auc> ComputeAuc(std::span<const double> scores, std::span<const int> labels, double alpha = 0.05);

// z = (a_t - a_c) / sqrt(var_t + var_c) for AUCs on independent samples (different arms).
absl::StatusOr<Comparison> AucDifferenceTest(const Auc& control, const Auc& treatment, double alpha = 0.05);

// Mean binary cross-entropy; scores are clipped to [eps, 1 - eps] with eps the float64 machine
// epsilon, as scikit-learn 1.2's log_loss does.
absl::StatusOr<double> LogLoss(std::span<const double> scores, std::span<const int> labels);

// Expected calibration error with `bins` equal-width bins on [0, 1]:
// sum over bins of (n_bin / n) * |mean label - mean score|.
absl::StatusOr<double> ExpectedCalibrationError(std::span<const double> scores, std::span<const int> labels,
                                                int bins = 10);

}  // namespace abgate::stats
