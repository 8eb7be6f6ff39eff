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

// The predictions that share one score: how many were positives and negatives. A model's
// predictions as groups in increasing score order (distinct scores) hold all that AUC, log loss
// and calibration depend on, and a group's counts can be kept up to date as labels arrive.
struct ScoreGroup {
  double score = 0;
  int64_t positives = 0;
  int64_t negatives = 0;
};
// ComputeAuc, LogLoss and ExpectedCalibrationError on groups (sorted by score, distinct, finite).
// A function of the groups only: the same predictions in any order give the same numbers.
absl::StatusOr<Auc> AucOfGroups(std::span<const ScoreGroup> groups, double alpha = 0.05);
absl::StatusOr<double> LogLossOfGroups(std::span<const ScoreGroup> groups);
absl::StatusOr<double> CalibrationErrorOfGroups(std::span<const ScoreGroup> groups, int bins = 10);
// The order-preserving key of a score that groups sort by (-0.0 and 0.0 alike).
uint64_t ScoreKey(double score);

// z = (a_t - a_c) / sqrt(var_t + var_c) for AUCs on independent samples (different arms).
absl::StatusOr<Comparison> AucDifferenceTest(const Auc& control, const Auc& treatment, double alpha = 0.05);

// Two models scored on the same observations (a shadowed candidate and the served model on the
// same requests), each observation's label known.
struct PairedModelComparison {
  int64_t n = 0;
  Auc a, b;  // each model's AUC with its DeLong variance
  // AUC: b - a, with DeLong, DeLong & Clarke-Pearson (1988)'s variance for correlated ROC curves,
  // Var(A_b - A_a) = S_aa + S_bb - 2 S_ab with S = S10 / m + S01 / n from the structural
  // components; z test and normal CI.
  double auc_diff = 0;
  double auc_diff_variance = 0;
  Interval auc_diff_ci;
  double auc_z = 0;
  double auc_p_value = 1;
  double auc_correlation = 0;  // of the two AUC estimates, S_ab / sqrt(S_aa S_bb)
  // Log loss: the mean of the per-observation difference l_b - l_a (clipped as LogLoss), with
  // its sample variance / n, a z test and a normal CI (paired: each observation once).
  double log_loss_a = 0, log_loss_b = 0;
  double log_loss_diff = 0;
  double log_loss_diff_variance = 0;
  Interval log_loss_diff_ci;
  double log_loss_z = 0;
  double log_loss_p_value = 1;
};

// The paired comparison of model b against model a. InvalidArgument when the spans differ in
// length or hold a non-finite score or a label other than 0/1; FailedPrecondition with fewer than
// 2 positives or 2 negatives, or when the AUC difference or the log-loss difference has no
// variance (e.g. identical models). O(n log n): the structural components come from one sort per
// model (as ComputeAuc).
absl::StatusOr<PairedModelComparison> ComparePairedModels(std::span<const double> scores_a,
                                                          std::span<const double> scores_b,
                                                          std::span<const int> labels, double alpha = 0.05);

// Mean binary cross-entropy; scores are clipped to [eps, 1 - eps] with eps the float64 machine
// epsilon, as scikit-learn 1.2's log_loss does.
absl::StatusOr<double> LogLoss(std::span<const double> scores, std::span<const int> labels);

// Expected calibration error with `bins` equal-width bins on [0, 1]:
// sum over bins of (n_bin / n) * |mean label - mean score|.
absl::StatusOr<double> ExpectedCalibrationError(std::span<const double> scores, std::span<const int> labels,
                                                int bins = 10);

}  // namespace abgate::stats
