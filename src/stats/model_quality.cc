#include "stats/model_quality.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "common/strings.h"
#include "stats/distributions.h"

namespace abgate::stats {
namespace {

// Midranks (1-based, ties share their average rank) of `x`.
std::vector<double> Midranks(const std::vector<double>& x) {
  const size_t n = x.size();
  std::vector<size_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return x[a] < x[b]; });
  std::vector<double> ranks(n);
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j + 1 < n && x[idx[j + 1]] == x[idx[i]]) ++j;
    const double mid = 0.5 * static_cast<double>(i + j) + 1;
    for (size_t k = i; k <= j; ++k) ranks[idx[k]] = mid;
    i = j + 1;
  }
  return ranks;
}

double SampleVariance(const std::vector<double>& v) {
  const double mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  double ss = 0;
  for (double x : v) ss += (x - mean) * (x - mean);
  return ss / static_cast<double>(v.size() - 1);
}

absl::Status CheckInputs(std::span<const double> scores, std::span<const int> labels) {
  if (scores.size() != labels.size()) return absl::InvalidArgumentError("scores and labels differ in length");
  for (size_t i = 0; i < scores.size(); ++i) {
    if (!std::isfinite(scores[i])) return absl::InvalidArgumentError(StrCat("score ", i, " is not finite"));
    if (labels[i] != 0 && labels[i] != 1) return absl::InvalidArgumentError(StrCat("label ", i, " is not 0 or 1"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Auc> ComputeAuc(std::span<const double> scores, std::span<const int> labels, double alpha) {
  if (auto s = CheckInputs(scores, labels); !s.ok()) return s;
  std::vector<double> pos, neg;
  for (size_t i = 0; i < scores.size(); ++i) (labels[i] ? pos : neg).push_back(scores[i]);
  if (pos.size() < 2 || neg.size() < 2) {
    return absl::FailedPreconditionError(
        StrCat("AUC needs at least 2 positives and 2 negatives, have ", pos.size(), " and ", neg.size()));
  }
  const double m = static_cast<double>(pos.size()), n = static_cast<double>(neg.size());
  std::vector<double> all(pos);
  all.insert(all.end(), neg.begin(), neg.end());
  const auto r_all = Midranks(all);
  const auto r_pos = Midranks(pos);
  const auto r_neg = Midranks(neg);
  // Sun & Xu: V10_i = (R_all(i) - R_pos(i)) / n, V01_j = 1 - (R_all(m + j) - R_neg(j)) / m.
  std::vector<double> v10(pos.size()), v01(neg.size());
  double sum_pos_ranks = 0;
  for (size_t i = 0; i < pos.size(); ++i) {
    v10[i] = (r_all[i] - r_pos[i]) / n;
    sum_pos_ranks += r_all[i];
  }
  for (size_t j = 0; j < neg.size(); ++j) v01[j] = 1 - (r_all[pos.size() + j] - r_neg[j]) / m;
  Auc out;
  out.positives = static_cast<int64_t>(pos.size());
  out.negatives = static_cast<int64_t>(neg.size());
  out.value = (sum_pos_ranks - m * (m + 1) / 2) / (m * n);
  out.variance = SampleVariance(v10) / m + SampleVariance(v01) / n;
  const double half = NormalQuantile(1 - alpha / 2) * std::sqrt(out.variance);
  out.ci = {std::max(0.0, out.value - half), std::min(1.0, out.value + half)};
  return out;
}

absl::StatusOr<Comparison> AucDifferenceTest(const Auc& control, const Auc& treatment, double alpha) {
  const double var = control.variance + treatment.variance;
  if (!(var > 0)) return absl::FailedPreconditionError("AUC difference needs positive variance");
  Comparison out;
  out.test = "delong_auc_z";
  out.control_mean = control.value;
  out.treatment_mean = treatment.value;
  out.diff = treatment.value - control.value;
  out.diff_variance = var;
  const double half = NormalQuantile(1 - alpha / 2) * std::sqrt(var);
  out.diff_ci = {out.diff - half, out.diff + half};
  out.statistic = out.diff / std::sqrt(var);
  out.p_value = TwoSidedNormalP(out.statistic);
  return out;
}

absl::StatusOr<double> LogLoss(std::span<const double> scores, std::span<const int> labels) {
  if (auto s = CheckInputs(scores, labels); !s.ok()) return s;
  if (scores.empty()) return absl::FailedPreconditionError("log loss needs at least 1 observation");
  double total = 0;
  for (size_t i = 0; i < scores.size(); ++i) {
    // scikit-learn >= 1.2 (eps="auto"): clip to machine epsilon of float64.
    constexpr double kEps = std::numeric_limits<double>::epsilon();
    const double p = std::clamp(scores[i], kEps, 1 - kEps);
    total -= labels[i] ? std::log(p) : std::log1p(-p);
  }
  return total / static_cast<double>(scores.size());
}

absl::StatusOr<double> ExpectedCalibrationError(std::span<const double> scores, std::span<const int> labels, int bins) {
  if (auto s = CheckInputs(scores, labels); !s.ok()) return s;
  if (scores.empty()) return absl::FailedPreconditionError("calibration error needs at least 1 observation");
  if (bins < 1) return absl::InvalidArgumentError("bins must be >= 1");
  std::vector<double> sum_score(bins), sum_label(bins);
  std::vector<int64_t> count(bins);
  for (size_t i = 0; i < scores.size(); ++i) {
    if (scores[i] < 0 || scores[i] > 1) return absl::InvalidArgumentError("calibration needs scores in [0, 1]");
    const int b = std::min(bins - 1, static_cast<int>(scores[i] * bins));
    sum_score[b] += scores[i];
    sum_label[b] += labels[i];
    ++count[b];
  }
  double ece = 0;
  for (int b = 0; b < bins; ++b) {
    if (count[b] == 0) continue;
    ece += std::fabs(sum_label[b] - sum_score[b]) / static_cast<double>(scores.size());
  }
  return ece;
}

}  // namespace abgate::stats
