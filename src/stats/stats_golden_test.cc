// src/stats against published examples (sources in each test) and reference files produced
// by scipy/scikit-learn (tests/data/stats, provenance in each file's first line).
#include <cmath>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "testing/reference_csv.h"
#include "stats/bayes.h"
#include "stats/cuped.h"
#include "stats/distributions.h"
#include "stats/model_quality.h"
#include "stats/multiple_testing.h"
#include "stats/power.h"
#include "stats/sequential.h"
#include "stats/tests.h"
#include "testing/test_paths.h"

namespace abgate::stats {
namespace {

using testing::ReadReferenceCsv;

double D(const std::map<std::string, std::string>& row, const std::string& key) { return std::stod(row.at(key)); }
int64_t I(const std::map<std::string, std::string>& row, const std::string& key) { return std::stoll(row.at(key)); }

template <typename T>
std::vector<T> List(const std::string& s) {
  std::vector<T> out;
  std::stringstream ss(s);
  std::string cell;
  while (std::getline(ss, cell, ';')) out.push_back(static_cast<T>(std::stod(cell)));
  return out;
}

// |got - want| <= rel * max(|want|, tiny): relative tolerance that still works near 0.
#define EXPECT_REL(got, want, rel) EXPECT_NEAR(got, want, (rel) * std::max(std::fabs(want), 1e-300))

TEST(GoldenTest, StatsmodelsProportionsZtestExample) {
  // statsmodels docs, proportions_ztest: count=[5, 12], nobs=[83, 99] → z -1.40783, p 0.15918.
  auto r = TwoProportionZTest({12, 99}, {5, 83});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NEAR(r->statistic, -1.40783, 5e-6);
  EXPECT_NEAR(r->p_value, 0.15918, 5e-6);
}

TEST(GoldenTest, ScipyWelchExample) {
  // scipy docs, ttest_ind_from_stats(15, sqrt(87.5), 13, 12, sqrt(39), 11, equal_var=False):
  // t 0.935846, p 0.359998; Welch–Satterthwaite df 20.9846.
  auto r = WelchTTest(Moments::FromSummary(11, 12, 39), Moments::FromSummary(13, 15, 87.5));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NEAR(r->statistic, 0.935846, 5e-7);
  EXPECT_NEAR(r->df, 20.9846, 5e-5);
  EXPECT_NEAR(r->p_value, 0.359998, 5e-7);
}

TEST(GoldenTest, ScipyChisquareExample) {
  // scipy docs, chisquare([16, 18, 16, 14, 12, 12]) → statistic 2.0, p 0.84914503608460956.
  const std::vector<int64_t> obs = {16, 18, 16, 14, 12, 12};
  const std::vector<double> shares(6, 1.0);
  auto r = ChiSquaredGoodnessOfFit(obs, shares);
  ASSERT_TRUE(r.ok());
  EXPECT_NEAR(r->statistic, 2.0, 1e-12);
  EXPECT_EQ(r->df, 5);
  EXPECT_NEAR(r->p_value, 0.849145, 5e-7);
}

TEST(GoldenTest, GrowthBookHolmAndBenjaminiHochbergVectors) {
  // GrowthBook gbstats tests (test_multiple_testing): Holm-Bonferroni and Benjamini-Hochberg.
  const std::vector<double> holm_in = {0.01, 0.04, 0.03, 0.005, 0.55, 0.6};
  const std::vector<double> holm_out = {0.05, 0.12, 0.12, 0.03, 1, 1};
  const auto holm = HolmBonferroni(holm_in);
  for (size_t i = 0; i < holm.size(); ++i) EXPECT_NEAR(holm[i], holm_out[i], 1e-12) << i;
  const std::vector<double> bh_in = {0.898, 0.138, 0.007, 0.964, 0.538, 0.006, 0.138};
  const std::vector<double> bh_out = {0.964, 0.2415, 0.0245, 0.964, 0.7532, 0.0245, 0.2415};
  const auto bh = BenjaminiHochberg(bh_in);
  for (size_t i = 0; i < bh.size(); ++i) EXPECT_NEAR(bh[i], bh_out[i], 1e-12) << i;
}

TEST(GoldenTest, TwoProportionZMatchesReference) {
  const auto rows = ReadReferenceCsv("two_proportion_z.csv");
  ASSERT_EQ(rows.size(), 25u);
  for (const auto& row : rows) {
    auto r = TwoProportionZTest({I(row, "s_c"), I(row, "n_c")}, {I(row, "s_t"), I(row, "n_t")});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_REL(r->statistic, D(row, "z"), 1e-9);
    EXPECT_REL(r->p_value, D(row, "p"), 1e-9);
    EXPECT_REL(r->diff_ci.low, D(row, "ci_low"), 1e-9);
    EXPECT_REL(r->diff_ci.high, D(row, "ci_high"), 1e-9);
  }
}

TEST(GoldenTest, WelchMatchesReference) {
  const auto rows = ReadReferenceCsv("welch_t.csv");
  ASSERT_EQ(rows.size(), 25u);
  for (const auto& row : rows) {
    auto r = WelchTTest(Moments::FromSummary(I(row, "n_c"), D(row, "mean_c"), D(row, "var_c")),
                        Moments::FromSummary(I(row, "n_t"), D(row, "mean_t"), D(row, "var_t")));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_REL(r->statistic, D(row, "t"), 1e-9);
    EXPECT_REL(r->df, D(row, "df"), 1e-9);
    // Very small p-values come from tails where scipy and Boost agree to ~1e-9 relative.
    EXPECT_REL(r->p_value, D(row, "p"), 1e-8);
    EXPECT_REL(r->diff_ci.low, D(row, "ci_low"), 1e-9);
    EXPECT_REL(r->diff_ci.high, D(row, "ci_high"), 1e-9);
  }
}

TEST(GoldenTest, ChiSquaredMatchesReference) {
  for (const auto& row : ReadReferenceCsv("chi2_independence.csv")) {
    const auto s = List<int64_t>(row.at("successes"));
    const auto n = List<int64_t>(row.at("trials"));
    std::vector<Proportion> arms;
    for (size_t i = 0; i < s.size(); ++i) arms.push_back({s[i], n[i]});
    auto r = ChiSquaredIndependence(arms);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_REL(r->statistic, D(row, "chi2"), 1e-9);
    EXPECT_EQ(r->df, I(row, "df"));
    EXPECT_REL(r->p_value, D(row, "p"), 1e-9);
  }
  for (const auto& row : ReadReferenceCsv("chi2_goodness_of_fit.csv")) {
    auto r = ChiSquaredGoodnessOfFit(List<int64_t>(row.at("observed")), List<double>(row.at("weights")));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_REL(r->statistic, D(row, "chi2"), 1e-9);
    EXPECT_REL(r->p_value, D(row, "p"), 1e-9);
  }
}

TEST(GoldenTest, AucDeLongLogLossAndCalibrationMatchReference) {
  std::map<int64_t, std::pair<std::vector<double>, std::vector<int>>> data;
  for (const auto& row : ReadReferenceCsv("auc_data.csv")) {
    auto& [scores, labels] = data[I(row, "case")];
    scores.push_back(D(row, "score"));
    labels.push_back(static_cast<int>(I(row, "label")));
  }
  const auto expected = ReadReferenceCsv("auc_expected.csv");
  ASSERT_EQ(expected.size(), 12u);
  for (const auto& row : expected) {
    const auto& [scores, labels] = data.at(I(row, "case"));
    auto auc = ComputeAuc(scores, labels);
    ASSERT_TRUE(auc.ok()) << auc.status();
    EXPECT_REL(auc->value, D(row, "auc"), 1e-12);
    EXPECT_REL(auc->variance, D(row, "delong_var"), 1e-9);
    EXPECT_REL(*LogLoss(scores, labels), D(row, "log_loss"), 1e-9);
    EXPECT_NEAR(*ExpectedCalibrationError(scores, labels), D(row, "ece"), 1e-12);
  }
}

TEST(GoldenTest, ChanceToBeatMatchesNumericalIntegration) {
  for (const auto& row : ReadReferenceCsv("chance_to_beat.csv")) {
    auto r = ChanceToBeatBinomial({I(row, "s_c"), I(row, "n_c")}, {I(row, "s_t"), I(row, "n_t")});
    ASSERT_TRUE(r.ok());
    EXPECT_NEAR(*r, D(row, "p_t_beats_c"), 1e-7);  // quadrature accuracy
  }
}

TEST(GoldenTest, CupedMatchesReference) {
  std::map<int64_t, std::pair<CupedState, CupedState>> states;
  for (const auto& row : ReadReferenceCsv("cuped_data.csv")) {
    auto& [c, t] = states[I(row, "case")];
    (row.at("arm") == "c" ? c : t).Add(D(row, "y"), D(row, "x"));
  }
  for (const auto& row : ReadReferenceCsv("cuped_expected.csv")) {
    const auto& [c, t] = states.at(I(row, "case"));
    auto r = CupedWelchTest(c, t);
    ASSERT_TRUE(r.ok()) << r.status();
    // Sums of squares lose a few digits against numpy's two-pass formulas: 1e-7 relative.
    EXPECT_REL(r->theta, D(row, "theta"), 1e-7);
    EXPECT_REL(r->comparison.diff, D(row, "diff"), 1e-7);
    EXPECT_REL(r->comparison.statistic, D(row, "t"), 1e-7);
    EXPECT_REL(r->comparison.p_value, D(row, "p"), 1e-6);
    EXPECT_GT(r->variance_reduction, 0.5);  // X explains most of Y's variance here
  }
}

TEST(GoldenTest, SampleSizeForTenToTwelvePercent) {
  // (z_.975 + z_.8)^2 (0.1*0.9 + 0.12*0.88) / 0.02^2 = 3838.1 → 3839 per arm.
  EXPECT_EQ(*SampleSizeProportions(0.10, 0.12), 3839);
  EXPECT_NEAR(*PowerProportions(0.10, 0.12, 3839), 0.8, 1e-3);
  EXPECT_NEAR(*MdeProportions(0.10, 3839), 0.02, 1e-4);
  EXPECT_EQ(*SampleSizeMeans(1.0, 0.1), 1570);  // 2 * 7.8489 / 0.01
  EXPECT_NEAR(*MdeMeans(1.0, 1570), 0.1, 1e-4);
}

PlanInput PlanRow(const std::map<std::string, std::string>& row) {
  PlanInput in;
  in.metric = row.at("metric") == "mean" ? PlanMetric::kMean : PlanMetric::kProportion;
  in.baseline = D(row, "baseline");
  in.sd = D(row, "sd");
  in.weights = List<double>(row.at("weights"));
  return in;
}

TEST(GoldenTest, PlanMatchesStatsmodelsAndTheTextbookFormula) {
  // tests/data/stats/power.csv (gen_power_reference.py): units from the textbook formula with
  // Bonferroni over k - 1 comparisons, statsmodels NormalIndPower's n and power, Cohen's h, and the
  // sequential units from an independent scipy search over GrowthBook's half-width.
  const auto rows = ReadReferenceCsv("power.csv");
  ASSERT_EQ(rows.size(), 22u);
  for (const auto& row : rows) {
    PlanInput in = PlanRow(row);
    in.mde = D(row, "mde");
    in.alpha = D(row, "alpha");
    in.power = D(row, "power");
    auto plan = Plan(in);
    ASSERT_TRUE(plan.ok()) << plan.status();
    const auto want = List<int64_t>(row.at("units_per_arm"));
    EXPECT_EQ(plan->fixed.units_per_arm, want) << row.at("weights") << " " << row.at("mde");
    int64_t total = 0;
    for (auto u : want) total += u;
    EXPECT_EQ(plan->fixed.total_units, total);
    EXPECT_EQ(plan->comparisons, static_cast<int>(want.size()) - 1);
    EXPECT_REL(plan->fixed.power, D(row, "sm_power"), 1e-6);
    const double nobs1 = D(row, "sm_nobs1");
    EXPECT_GE(static_cast<double>(plan->fixed.units_per_arm[0]), nobs1);
    EXPECT_LE(static_cast<double>(plan->fixed.units_per_arm[0]), nobs1 + 1.5);
    if (!row.at("cohen_h_nobs1").empty()) {
      EXPECT_REL(plan->fixed.units_per_arm[0], D(row, "cohen_h_nobs1"), 1e-2);
    }
    const auto seq = List<int64_t>(row.at("seq_units_per_arm"));
    ASSERT_EQ(plan->sequential.units_per_arm.size(), seq.size());
    for (size_t j = 0; j < seq.size(); ++j) EXPECT_NEAR(plan->sequential.units_per_arm[j], seq[j], 1) << j;
    EXPECT_GE(plan->sequential.power, in.power);
    EXPECT_GT(plan->sequential.total_units, plan->fixed.total_units);
  }
}

TEST(GoldenTest, PlanMdeMatchesStatsmodels) {
  for (const auto& row : ReadReferenceCsv("power_mde.csv")) {
    PlanInput in = PlanRow(row);
    in.total_units = I(row, "total_units");
    auto plan = Plan(in);
    ASSERT_TRUE(plan.ok()) << plan.status();
    // statsmodels also counts rejections in the far tail, the textbook MDE does not: 1e-5 for means.
    EXPECT_REL(plan->fixed.mde, D(row, "mde"), row.at("metric") == "mean" ? 1e-5 : 1e-6) << row.at("weights");
    EXPECT_GT(plan->sequential.mde, plan->fixed.mde);
  }
}

// A two-arm rate plan; the size and the effect only when given.
PlanInput Rate(double baseline, std::optional<double> mde, std::optional<int64_t> total = {}) {
  PlanInput in;
  in.baseline = baseline;
  in.mde = mde;
  in.total_units = total;
  return in;
}

TEST(GoldenTest, TenToElevenPercentIsAbout14750PerArm) {
  // The example: statsmodels NormalIndPower gives 14744 (Cohen's h) or 14748.0 (the
  // unpooled effect size); the textbook unpooled formula 14748.1 → 14749.
  auto plan = Plan(Rate(0.10, 0.01));
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->fixed.units_per_arm, (std::vector<int64_t>{14749, 14749}));
  EXPECT_EQ(plan->fixed.total_units, 29498);
  // Power at those units, and back to the MDE from them.
  EXPECT_NEAR(Plan(Rate(0.10, 0.01, 29498))->fixed.power, 0.8, 1e-4);
  EXPECT_NEAR(Plan(Rate(0.10, {}, 29498))->fixed.mde, 0.01, 1e-6);
}

TEST(EdgeCaseTest, PlanRejectsBadInputWithAReason) {
  const auto code = [](const PlanInput& in) { return Plan(in).status().code(); };
  const auto invalid = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(code(Rate(0, 0.01)), invalid);
  EXPECT_EQ(code(Rate(0.95, 0.06)), invalid);  // target above 1
  EXPECT_EQ(code(Rate(0.1, {})), invalid);     // neither effect nor size
  PlanInput in = Rate(0.1, 0.01);
  in.weights = {1};
  EXPECT_EQ(code(in), invalid);
  in.weights = {1, 0};
  EXPECT_EQ(code(in), invalid);
  in = Rate(0.1, 0.01);
  in.alpha = 1;
  EXPECT_EQ(code(in), invalid);
  in = Rate(0, 1);
  in.metric = PlanMetric::kMean;
  EXPECT_EQ(code(in), invalid);  // sd 0
  // Ten units cannot show any increase over 50% at 99.99% power.
  in = Rate(0.5, {}, 10);
  in.power = 0.9999;
  EXPECT_EQ(code(in), absl::StatusCode::kFailedPrecondition);
}

TEST(GoldenTest, SequentialHalfWidthIsGrowthBooksFormula) {
  // gbstats sequential_interval_halfwidth(s2, n, rho, alpha) with s2 = n * Var(estimate).
  const double var = 0.0004, alpha = 0.05;
  const int64_t n = 10000;
  auto r = MixtureSequentialTest(0.01, var, n, alpha, 5000);
  ASSERT_TRUE(r.ok());
  const double rho = std::sqrt((-2 * std::log(alpha) + std::log(-2 * std::log(alpha) + 1)) / 5000);
  const double s2 = var * n;
  const double half = std::sqrt(s2) * std::sqrt(2 * (n * rho * rho + 1) / (double(n) * n * rho * rho) *
                                                std::log(std::sqrt(n * rho * rho + 1) / alpha));
  EXPECT_NEAR(r->ci.high - 0.01, half, 1e-15);
  // Duality: the always-valid p-value is below alpha exactly when 0 leaves the sequence.
  for (double est : {0.0, 0.02, 0.04, 0.05, 0.06, 0.08}) {
    auto s = MixtureSequentialTest(est, var, n, alpha, 5000);
    EXPECT_EQ(s->p_value < alpha, s->ci.low > 0 || s->ci.high < 0) << est;
  }
  // Wider than the fixed-horizon interval at the same look.
  EXPECT_GT(half, 1.959963984540054 * std::sqrt(var));
}

TEST(EdgeCaseTest, TooLittleDataIsAnErrorNotNaN) {
  EXPECT_EQ(TwoProportionZTest({0, 0}, {1, 10}).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(TwoProportionZTest({0, 10}, {0, 10}).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(WelchTTest(Moments::FromSummary(1, 5, 0), Moments::FromSummary(10, 5, 1)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  Moments constant;
  for (int i = 0; i < 5; ++i) constant.Add(3);
  EXPECT_FALSE(WelchTTest(constant, constant).ok());
  const std::vector<double> s = {0.1, 0.9, 0.3};
  const std::vector<int> l = {1, 1, 0};
  EXPECT_EQ(ComputeAuc(s, l).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(MixtureSequentialTest(0.1, 0, 100).ok());
  EXPECT_FALSE(ChiSquaredIndependence(std::vector<Proportion>{{5, 10}}).ok());
  EXPECT_FALSE(SampleSizeProportions(0.1, 0.1).ok());
  // Control mean 0: the diff is defined, the lift is not, and neither is NaN.
  auto r = TwoProportionZTest({0, 100}, {5, 100});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->lift.has_value());
  EXPECT_TRUE(std::isfinite(r->diff_ci.low));
}

TEST(EdgeCaseTest, SampleRatioMismatchAndZeroWeightArms) {
  const std::vector<int64_t> fine = {8012, 1988};
  const std::vector<double> w = {80, 20};
  auto r = SampleRatioMismatch(fine, w);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->mismatch);
  EXPECT_GT(r->test.p_value, 0.5);
  const std::vector<int64_t> skewed = {8300, 1700};
  EXPECT_TRUE(SampleRatioMismatch(skewed, w)->mismatch);
  // A zero-weight arm with no units is left out; with units it is a mismatch by itself.
  const std::vector<int64_t> three = {8012, 1988, 0};
  const std::vector<double> w3 = {80, 20, 0};
  EXPECT_FALSE(SampleRatioMismatch(three, w3)->mismatch);
  const std::vector<int64_t> leak = {8012, 1988, 3};
  auto leaked = SampleRatioMismatch(leak, w3);
  EXPECT_TRUE(leaked->mismatch);
  EXPECT_NE(leaked->note.find("weight 0"), std::string::npos);
}

TEST(EdgeCaseTest, MomentsCombineEqualsOnePass) {
  Moments all, a, b;
  for (int i = 0; i < 1000; ++i) {
    const double x = std::sin(i) * 100 + 1e6;  // large offset: sum-of-squares would cancel
    all.Add(x);
    (i % 3 ? a : b).Add(x);
  }
  a.Combine(b);
  EXPECT_EQ(a.n, all.n);
  EXPECT_NEAR(a.mean, all.mean, 1e-12 * all.mean);
  EXPECT_NEAR(*a.Variance(), *all.Variance(), 1e-9 * *all.Variance());
}

// Paired DeLong (issue 18 item 6) against its definition, computed the slow way: the
// Mann-Whitney kernel psi(x, y) = 1, 1/2, 0 over every (positive, negative) pair, the structural
// components V10(i) = mean_j psi(x_i, y_j) and V01(j) = mean_i psi(x_i, y_j) per model, their 2x2
// sample covariance matrices S10 and S01, S = S10 / m + S01 / n, Var(A_b - A_a) = S_bb + S_aa -
// 2 S_ab (DeLong, DeLong & Clarke-Pearson 1988, Biometrics 44(3), eqs. 2-5).
TEST(GoldenTest, PairedDelongMatchesTheQuadraticDefinition) {
  std::mt19937_64 rng(1988);
  std::normal_distribution<double> noise(0, 1);
  std::uniform_real_distribution<double> u(0, 1);
  for (int trial = 0; trial < 4; ++trial) {
    const int n = 150 + 100 * trial;
    std::vector<double> a, b;
    std::vector<int> y;
    for (int i = 0; i < n; ++i) {
      const int label = u(rng) < 0.3;
      const double common = noise(rng);
      // Scores in (0, 1), rounded to 0.02 in half the trials so ties occur within and across models.
      auto squash = [&](double z) {
        double p = 1 / (1 + std::exp(-z));
        if (trial % 2 == 0) p = std::round(p * 50) / 50;
        return std::clamp(p, 0.001, 0.999);
      };
      a.push_back(squash(0.8 * label + common + 0.7 * noise(rng)));
      b.push_back(squash(1.2 * label + common + 0.7 * noise(rng)));
      y.push_back(label);
    }
    std::vector<size_t> pos, neg;
    for (int i = 0; i < n; ++i) (y[i] ? pos : neg).push_back(i);
    const double m = static_cast<double>(pos.size()), k = static_cast<double>(neg.size());
    auto psi = [](double x, double z) { return x > z ? 1.0 : x == z ? 0.5 : 0.0; };
    auto components = [&](const std::vector<double>& s, std::vector<double>& v10, std::vector<double>& v01) {
      v10.assign(pos.size(), 0);
      v01.assign(neg.size(), 0);
      for (size_t i = 0; i < pos.size(); ++i) {
        for (size_t j = 0; j < neg.size(); ++j) {
          const double p = psi(s[pos[i]], s[neg[j]]);
          v10[i] += p / k;
          v01[j] += p / m;
        }
      }
    };
    auto cov = [](const std::vector<double>& x, const std::vector<double>& z) {
      double mx = 0, mz = 0;
      for (size_t i = 0; i < x.size(); ++i) mx += x[i] / x.size(), mz += z[i] / z.size();
      double c = 0;
      for (size_t i = 0; i < x.size(); ++i) c += (x[i] - mx) * (z[i] - mz);
      return c / (x.size() - 1);
    };
    std::vector<double> a10, a01, b10, b01;
    components(a, a10, a01);
    components(b, b10, b01);
    double auc_a = 0, auc_b = 0;
    for (size_t i = 0; i < pos.size(); ++i) auc_a += a10[i] / m, auc_b += b10[i] / m;
    const double s_aa = cov(a10, a10) / m + cov(a01, a01) / k;
    const double s_bb = cov(b10, b10) / m + cov(b01, b01) / k;
    const double s_ab = cov(a10, b10) / m + cov(a01, b01) / k;
    const double var = s_aa + s_bb - 2 * s_ab;
    const double z = (auc_b - auc_a) / std::sqrt(var);
    double la = 0, lb = 0;
    std::vector<double> d;
    for (int i = 0; i < n; ++i) {
      const double x = y[i] ? -std::log(a[i]) : -std::log(1 - a[i]);
      const double w = y[i] ? -std::log(b[i]) : -std::log(1 - b[i]);
      la += x / n, lb += w / n;
      d.push_back(w - x);
    }
    const double d_var = cov(d, d) / n;

    auto r = ComparePairedModels(a, b, y);
    ASSERT_TRUE(r.ok()) << r.status();
    SCOPED_TRACE(trial);
    EXPECT_NEAR(r->a.value, auc_a, 1e-12);
    EXPECT_NEAR(r->b.value, auc_b, 1e-12);
    EXPECT_NEAR(r->auc_diff, auc_b - auc_a, 1e-12);
    EXPECT_NEAR(r->auc_diff_variance, var, 1e-12 * var + 1e-15);
    EXPECT_NEAR(r->auc_z, z, 1e-9 * std::fabs(z));
    EXPECT_NEAR(r->auc_p_value, TwoSidedNormalP(z), 1e-12);
    EXPECT_NEAR(r->auc_correlation, s_ab / std::sqrt(s_aa * s_bb), 1e-9);
    EXPECT_NEAR(r->a.variance, s_aa, 1e-12);  // each model alone: ComputeAuc's DeLong variance
    const double half = NormalQuantile(0.975) * std::sqrt(var);
    EXPECT_NEAR(r->auc_diff_ci.low, auc_b - auc_a - half, 1e-12);
    EXPECT_NEAR(r->log_loss_a, la, 1e-12);
    EXPECT_NEAR(r->log_loss_b, lb, 1e-12);
    EXPECT_NEAR(r->log_loss_diff, lb - la, 1e-12);
    EXPECT_NEAR(r->log_loss_diff_variance, d_var, 1e-12 * d_var);
    EXPECT_NEAR(r->log_loss_z, (lb - la) / std::sqrt(d_var), 1e-9);
    // The paired variance is smaller than treating the two AUCs as independent samples.
    EXPECT_LT(var, s_aa + s_bb);
  }
}

TEST(EdgeCaseTest, PairedComparisonRefusesWhatItCannotCompare) {
  const std::vector<double> a = {0.1, 0.4, 0.35, 0.8, 0.7, 0.2}, shorter = {0.1, 0.2};
  const std::vector<int> y = {0, 0, 1, 1, 1, 0};
  EXPECT_EQ(ComparePairedModels(a, shorter, y).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ComparePairedModels(a, a, y).status().code(), absl::StatusCode::kFailedPrecondition);
  const std::vector<int> one_positive = {0, 0, 1, 0, 0, 0};
  EXPECT_EQ(ComparePairedModels(a, std::vector<double>{0.3, 0.1, 0.5, 0.2, 0.9, 0.6}, one_positive).status().code(),
            absl::StatusCode::kFailedPrecondition);
  const std::vector<double> nan = {0.1, 0.4, std::nan(""), 0.8, 0.7, 0.2};
  EXPECT_EQ(ComparePairedModels(a, nan, y).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace abgate::stats
