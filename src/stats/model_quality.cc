#include "stats/model_quality.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "common/strings.h"
#include "stats/distributions.h"
#include "stats/moments.h"

namespace abgate::stats {
namespace {

absl::Status CheckInputs(std::span<const double> scores, std::span<const int> labels) {
  if (scores.size() != labels.size()) return absl::InvalidArgumentError("scores and labels differ in length");
  for (size_t i = 0; i < scores.size(); ++i) {
    if (!std::isfinite(scores[i])) return absl::InvalidArgumentError(StrCat("score ", i, " is not finite"));
    if (labels[i] != 0 && labels[i] != 1) return absl::InvalidArgumentError(StrCat("label ", i, " is not 0 or 1"));
  }
  return absl::OkStatus();
}

uint64_t OrderedKey(double d) { return ScoreKey(d); }

struct Keyed {
  uint64_t key;
  int64_t label;
};

// LSD radix sort by key, 8 bits per pass, skipping the passes where every key has the same
// byte (scores in [0, 1] share most exponent bits). ~10× faster than std::sort on 10M pairs.
void RadixSort(std::vector<Keyed>& v) {
  std::vector<std::array<uint32_t, 256>> counts(8);
  for (auto& c : counts) c.fill(0);
  for (const Keyed& x : v) {
    for (int b = 0; b < 8; ++b) ++counts[b][(x.key >> (8 * b)) & 0xFF];
  }
  std::vector<Keyed> tmp(v.size());
  for (int b = 0; b < 8; ++b) {
    auto& c = counts[b];
    if (std::any_of(c.begin(), c.end(), [&](uint32_t n) { return n == v.size(); })) continue;
    uint32_t offset = 0;
    for (auto& n : c) {
      const uint32_t here = n;
      n = offset;
      offset += here;
    }
    for (const Keyed& x : v) tmp[c[(x.key >> (8 * b)) & 0xFF]++] = x;
    v.swap(tmp);
  }
}

}  // namespace

absl::StatusOr<Auc> ComputeAuc(std::span<const double> scores, std::span<const int> labels, double alpha) {
  if (auto s = CheckInputs(scores, labels); !s.ok()) return s;
  // One sort of (score, label), then a walk over groups of tied scores. For a positive in a
  // group with p positives and q negatives, DeLong's V10 = (negatives below + q/2) / n0; for a
  // negative, V01 = (positives above + p/2) / n1. This is Sun & Xu's midrank identity without
  // the three separate rankings (one O(n log n) sort, O(1) extra memory per group).
  std::vector<Keyed> data(scores.size());
  int64_t n1 = 0;
  for (size_t i = 0; i < scores.size(); ++i) {
    data[i] = {OrderedKey(scores[i]), labels[i]};
    n1 += labels[i];
  }
  const int64_t n0 = static_cast<int64_t>(scores.size()) - n1;
  if (n1 < 2 || n0 < 2) {
    return absl::FailedPreconditionError(
        StrCat("AUC needs at least 2 positives and 2 negatives, have ", n1, " and ", n0));
  }
  if (data.size() < (1u << 15)) {
    std::sort(data.begin(), data.end(), [](const Keyed& a, const Keyed& b) { return a.key < b.key; });
  } else {
    RadixSort(data);
  }
  std::vector<ScoreGroup> groups;
  for (size_t i = 0; i < data.size();) {
    ScoreGroup g;  // the score itself is not needed for AUC
    size_t j = i;
    while (j < data.size() && data[j].key == data[i].key) {
      (data[j].label ? g.positives : g.negatives)++;
      ++j;
    }
    groups.push_back(g);
    i = j;
  }
  return AucOfGroups(groups, alpha);
}

absl::StatusOr<Auc> AucOfGroups(std::span<const ScoreGroup> groups, double alpha) {
  int64_t n1 = 0, n0 = 0;
  for (const ScoreGroup& g : groups) {
    n1 += g.positives;
    n0 += g.negatives;
  }
  if (n1 < 2 || n0 < 2) {
    return absl::FailedPreconditionError(
        StrCat("AUC needs at least 2 positives and 2 negatives, have ", n1, " and ", n0));
  }
  // A walk over groups of tied scores. For a positive in a group with p positives and q
  // negatives, DeLong's V10 = (negatives below + q/2) / n0; for a negative, V01 = (positives
  // above + p/2) / n1. This is Sun & Xu's midrank identity without the three separate rankings.
  const double m = static_cast<double>(n1), n = static_cast<double>(n0);
  double sum10 = 0, sumsq10 = 0, sum01 = 0, sumsq01 = 0;
  int64_t neg_below = 0, pos_below = 0;
  for (const ScoreGroup& g : groups) {
    const int64_t p = g.positives, q = g.negatives;
    const double v10 = (static_cast<double>(neg_below) + 0.5 * static_cast<double>(q)) / n;
    const double v01 = (static_cast<double>(n1 - pos_below - p) + 0.5 * static_cast<double>(p)) / m;
    sum10 += static_cast<double>(p) * v10;
    sumsq10 += static_cast<double>(p) * v10 * v10;
    sum01 += static_cast<double>(q) * v01;
    sumsq01 += static_cast<double>(q) * v01 * v01;
    neg_below += q;
    pos_below += p;
  }
  Auc out;
  out.positives = n1;
  out.negatives = n0;
  out.value = sum10 / m;  // mean of V10 is the AUC
  const double var10 = (sumsq10 - sum10 * sum10 / m) / (m - 1);
  const double var01 = (sumsq01 - sum01 * sum01 / n) / (n - 1);
  out.variance = std::max(0.0, var10 / m + var01 / n);
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

namespace {

// DeLong's structural components of one model: V10 for every positive (the share of negatives
// it outscores, ties counting half) and V01 for every negative (the share of positives that
// outscore it), each in the input order of the positives / negatives. One sort, then a walk
// over tied groups as in ComputeAuc.
void StructuralComponents(std::span<const double> scores, std::span<const int> labels, int64_t n1, int64_t n0,
                          std::vector<double>& v10, std::vector<double>& v01) {
  struct Item {
    uint64_t key;
    uint32_t index;  // among the positives or the negatives
    int label;
  };
  std::vector<Item> items(scores.size());
  uint32_t pos = 0, neg = 0;
  for (size_t i = 0; i < scores.size(); ++i) items[i] = {OrderedKey(scores[i]), labels[i] ? pos++ : neg++, labels[i]};
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.key < b.key; });
  v10.assign(static_cast<size_t>(n1), 0);
  v01.assign(static_cast<size_t>(n0), 0);
  const double m = static_cast<double>(n1), n = static_cast<double>(n0);
  int64_t neg_below = 0, pos_below = 0;
  for (size_t i = 0; i < items.size();) {
    size_t j = i;
    int64_t p = 0, q = 0;
    while (j < items.size() && items[j].key == items[i].key) {
      (items[j].label ? p : q)++;
      ++j;
    }
    const double here10 = (static_cast<double>(neg_below) + 0.5 * static_cast<double>(q)) / n;
    const double here01 = (static_cast<double>(n1 - pos_below - p) + 0.5 * static_cast<double>(p)) / m;
    for (size_t k = i; k < j; ++k) (items[k].label ? v10[items[k].index] : v01[items[k].index]) = items[k].label ? here10 : here01;
    neg_below += q;
    pos_below += p;
    i = j;
  }
}

// Sample covariance (n - 1 denominator) of two equally long series.
double Covariance(const std::vector<double>& x, const std::vector<double>& y) {
  const double n = static_cast<double>(x.size());
  double mx = 0, my = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    mx += x[i];
    my += y[i];
  }
  mx /= n;
  my /= n;
  double c = 0;
  for (size_t i = 0; i < x.size(); ++i) c += (x[i] - mx) * (y[i] - my);
  return c / (n - 1);
}

}  // namespace

absl::StatusOr<PairedModelComparison> ComparePairedModels(std::span<const double> scores_a,
                                                          std::span<const double> scores_b,
                                                          std::span<const int> labels, double alpha) {
  if (scores_a.size() != scores_b.size()) return absl::InvalidArgumentError("the two models' scores differ in length");
  if (auto s = CheckInputs(scores_a, labels); !s.ok()) return s;
  if (auto s = CheckInputs(scores_b, labels); !s.ok()) return s;
  PairedModelComparison out;
  out.n = static_cast<int64_t>(labels.size());
  auto a = ComputeAuc(scores_a, labels, alpha);
  if (!a.ok()) return a.status();
  auto b = ComputeAuc(scores_b, labels, alpha);
  if (!b.ok()) return b.status();
  out.a = *a;
  out.b = *b;
  const int64_t n1 = a->positives, n0 = a->negatives;
  std::vector<double> v10a, v01a, v10b, v01b;
  StructuralComponents(scores_a, labels, n1, n0, v10a, v01a);
  StructuralComponents(scores_b, labels, n1, n0, v10b, v01b);
  const double m = static_cast<double>(n1), n = static_cast<double>(n0);
  const double s_aa = Covariance(v10a, v10a) / m + Covariance(v01a, v01a) / n;
  const double s_bb = Covariance(v10b, v10b) / m + Covariance(v01b, v01b) / n;
  const double s_ab = Covariance(v10a, v10b) / m + Covariance(v01a, v01b) / n;
  out.auc_diff = b->value - a->value;
  out.auc_diff_variance = s_aa + s_bb - 2 * s_ab;
  if (s_aa > 0 && s_bb > 0) out.auc_correlation = s_ab / std::sqrt(s_aa * s_bb);
  const double z_crit = NormalQuantile(1 - alpha / 2);
  if (!(out.auc_diff_variance > 0)) {
    return absl::FailedPreconditionError("the paired AUC difference has no variance (the two models rank alike)");
  }
  const double se = std::sqrt(out.auc_diff_variance);
  out.auc_z = out.auc_diff / se;
  out.auc_p_value = TwoSidedNormalP(out.auc_z);
  out.auc_diff_ci = {out.auc_diff - z_crit * se, out.auc_diff + z_crit * se};

  // Per-observation log-loss differences, clipped as LogLoss (scikit-learn's eps).
  constexpr double kEps = std::numeric_limits<double>::epsilon();
  auto loss = [&](double score, int label) {
    const double p = std::clamp(score, kEps, 1 - kEps);
    return label ? -std::log(p) : -std::log1p(-p);
  };
  Moments d;
  double la = 0, lb = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    const double x = loss(scores_a[i], labels[i]), y = loss(scores_b[i], labels[i]);
    la += x;
    lb += y;
    d.Add(y - x);
  }
  out.log_loss_a = la / static_cast<double>(labels.size());
  out.log_loss_b = lb / static_cast<double>(labels.size());
  out.log_loss_diff = d.mean;
  auto v = d.VarianceOfMean();
  if (!v.ok() || !(*v > 0)) return absl::FailedPreconditionError("the paired log-loss difference has no variance");
  out.log_loss_diff_variance = *v;
  const double lse = std::sqrt(*v);
  out.log_loss_z = d.mean / lse;
  out.log_loss_p_value = TwoSidedNormalP(out.log_loss_z);
  out.log_loss_diff_ci = {d.mean - z_crit * lse, d.mean + z_crit * lse};
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

uint64_t ScoreKey(double d) {
  if (d == 0) d = 0.0;
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof(bits));
  return (bits & 0x8000000000000000ULL) ? ~bits : bits | 0x8000000000000000ULL;
}

absl::StatusOr<double> LogLossOfGroups(std::span<const ScoreGroup> groups) {
  double total = 0;
  int64_t n = 0;
  for (const ScoreGroup& g : groups) {
    if (!std::isfinite(g.score)) return absl::InvalidArgumentError("a score is not finite");
    constexpr double kEps = std::numeric_limits<double>::epsilon();  // as LogLoss
    const double p = std::clamp(g.score, kEps, 1 - kEps);
    if (g.positives > 0) total -= static_cast<double>(g.positives) * std::log(p);
    if (g.negatives > 0) total -= static_cast<double>(g.negatives) * std::log1p(-p);
    n += g.positives + g.negatives;
  }
  if (n == 0) return absl::FailedPreconditionError("log loss needs at least 1 observation");
  return total / static_cast<double>(n);
}

absl::StatusOr<double> CalibrationErrorOfGroups(std::span<const ScoreGroup> groups, int bins) {
  if (bins < 1) return absl::InvalidArgumentError("bins must be >= 1");
  std::vector<double> sum_score(bins), sum_label(bins);
  std::vector<int64_t> count(bins);
  int64_t n = 0;
  for (const ScoreGroup& g : groups) {
    if (!(g.score >= 0 && g.score <= 1)) return absl::InvalidArgumentError("calibration needs scores in [0, 1]");
    const int b = std::min(bins - 1, static_cast<int>(g.score * bins));
    const int64_t k = g.positives + g.negatives;
    sum_score[b] += g.score * static_cast<double>(k);
    sum_label[b] += static_cast<double>(g.positives);
    count[b] += k;
    n += k;
  }
  if (n == 0) return absl::FailedPreconditionError("calibration error needs at least 1 observation");
  double ece = 0;
  for (int b = 0; b < bins; ++b) {
    if (count[b] == 0) continue;
    ece += std::fabs(sum_label[b] - sum_score[b]) / static_cast<double>(n);
  }
  return ece;
}

}  // namespace abgate::stats
