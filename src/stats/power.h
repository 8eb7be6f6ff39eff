// Experiment planning: sample size, power and minimum detectable effect (MDE) for two-sided
// tests of each treatment against the control (normal approximation, unpooled variances), for
// any number of arms with any split, and for both the fixed-horizon test and the always-valid
// mixture sequential test of stats/sequential.h. Pure and thread-safe.
//
// With control share w_c, treatment share w_t of N units in total, per-unit variances v_c and v_t
// (p(1-p) for a rate; sigma^2 for a mean) and an absolute effect delta, the estimate of delta has
//   Var = (v_c / w_c + v_t / w_t) / N.
// The fixed-horizon test rejects when |estimate| > h = z_{1-alpha'/2} sqrt(Var), with
// alpha' = alpha / (k - 1): the decision rule takes Holm over the k - 1 comparisons with the
// control, and Holm's first step is Bonferroni, so each comparison has at least the power of a
// test at alpha' (the plan is conservative by at most Holm's gain). The classic formula
//   N = (z_{1-alpha'/2} + z_power)^2 (v_c / w_c + v_t / w_t) / delta^2
// (e.g. Chow, Shao & Wang, "Sample Size Calculations in Clinical Research", 4.2) is what
// statsmodels' NormalIndPower computes for means. The sequential test rejects when 0 leaves the
// confidence sequence, i.e. |estimate| > h_seq(n_pair) (the half-width of MixtureSequentialTest
// over the pair's units); its units are the smallest N with the same power if the data is looked
// at once, at the end, found by numeric search. Looking more often can only stop it earlier, so
// this is the cost of the always-valid guarantee in the worst case.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"

namespace abgate::stats {

enum class PlanMetric { kProportion, kMean };

struct PlanInput {
  PlanMetric metric = PlanMetric::kProportion;
  double baseline = 0;            // the control's rate (proportion) or mean (mean; may be 0)
  double sd = 0;                  // per-unit standard deviation (mean only)
  std::optional<double> mde;      // absolute effect; unset → compute the MDE from total_units
  std::vector<double> weights = {1, 1};  // control first; any positive scale
  double alpha = 0.05;            // family-wise, two-sided
  double power = 0.8;             // per comparison
  std::optional<int64_t> total_units;    // set → power (with mde) or MDE (without) at this size
  double sequential_tuning_n = 5000;     // as `abgate analyze --sequential-tuning`
};

struct PlanDesign {
  std::vector<int64_t> units_per_arm;  // in weights order
  int64_t total_units = 0;
  double power = 0;                    // the smallest power over the comparisons at these units
  double mde = 0;                      // absolute
};

struct PlanResult {
  int comparisons = 1;                 // k - 1
  double alpha_per_comparison = 0.05;  // alpha / (k - 1)
  PlanDesign fixed;                    // fixed-horizon test
  PlanDesign sequential;               // always-valid mixture sequential test
};

// Sample size (mde set, total_units unset), power (both set) or MDE (total_units only).
// InvalidArgument for rates outside (0, 1), alpha/power outside (0, 1), fewer than two arms,
// non-positive weights or sd, a zero mde, or a target rate outside (0, 1); FailedPrecondition
// when no effect below a rate of 1 is detectable at the given size.
absl::StatusOr<PlanResult> Plan(const PlanInput& in);

// Two equal arms, one comparison: the classic per-arm forms of Plan.
absl::StatusOr<int64_t> SampleSizeProportions(double baseline, double target, double alpha = 0.05, double power = 0.8);
absl::StatusOr<double> PowerProportions(double baseline, double target, int64_t n_per_arm, double alpha = 0.05);
// Smallest absolute increase over `baseline` detectable with `n_per_arm` units per arm.
absl::StatusOr<double> MdeProportions(double baseline, int64_t n_per_arm, double alpha = 0.05, double power = 0.8);
absl::StatusOr<int64_t> SampleSizeMeans(double sigma, double delta, double alpha = 0.05, double power = 0.8);
absl::StatusOr<double> PowerMeans(double sigma, double delta, int64_t n_per_arm, double alpha = 0.05);
absl::StatusOr<double> MdeMeans(double sigma, int64_t n_per_arm, double alpha = 0.05, double power = 0.8);

}  // namespace abgate::stats
