// Simulation checks with fixed seeds: the fixed-horizon test's A/A false-positive rate, the
// sequential test's false-positive rate under continuous monitoring, and the z-test's power
// against the planned power.
#include <algorithm>
#include <numeric>
#include <random>

#include "gtest/gtest.h"
#include "common/random.h"
#include "stats/model_quality.h"
#include "stats/power.h"
#include "stats/sequential.h"
#include "stats/tests.h"

namespace abgate::stats {
namespace {

TEST(SimulationTest, AaFalsePositiveRateOfTheZTestIsNearAlpha) {
  std::mt19937_64 rng(7);
  std::binomial_distribution<int64_t> draw(5000, 0.10);
  int positives = 0;
  const int kExperiments = 2000;
  for (int i = 0; i < kExperiments; ++i) {
    auto r = TwoProportionZTest({draw(rng), 5000}, {draw(rng), 5000});
    ASSERT_TRUE(r.ok());
    positives += r->p_value < 0.05;
  }
  const double rate = static_cast<double>(positives) / kExperiments;
  EXPECT_GE(rate, 0.04) << rate;
  EXPECT_LE(rate, 0.06) << rate;
}

TEST(SimulationTest, AaFalsePositiveRateOfWelchIsNearAlpha) {
  std::mt19937_64 rng(11);
  std::lognormal_distribution<double> revenue(3, 1);  // skewed, like revenue per user
  int positives = 0;
  for (int i = 0; i < 2000; ++i) {
    Moments a, b;
    for (int k = 0; k < 400; ++k) {
      a.Add(revenue(rng));
      b.Add(revenue(rng));
    }
    positives += WelchTTest(a, b)->p_value < 0.05;
  }
  EXPECT_GE(positives, 80);   // 4%
  EXPECT_LE(positives, 120);  // 6%
}

TEST(SimulationTest, SequentialTestKeepsFalsePositivesBelowAlphaWhenPeekingEvery100Units) {
  std::mt19937_64 rng(13);
  std::bernoulli_distribution unit(0.10);
  const int kExperiments = 1000, kUnits = 10000;
  int ever_significant = 0, naive_ever_significant = 0;
  for (int e = 0; e < kExperiments; ++e) {
    Proportion a, b;
    bool seq_hit = false, naive_hit = false;
    for (int n = 1; n <= kUnits / 2; ++n) {
      a.Add(unit(rng));
      b.Add(unit(rng));
      if ((2 * n) % 100 != 0) continue;  // a look after every 100 units
      auto z = TwoProportionZTest(a, b);
      if (!z.ok()) continue;
      naive_hit |= z->p_value < 0.05;
      auto s = MixtureSequentialTest(z->diff, z->diff_variance, 2 * n);
      seq_hit |= s.ok() && s->p_value < 0.05;
    }
    ever_significant += seq_hit;
    naive_ever_significant += naive_hit;
  }
  EXPECT_LE(ever_significant, kExperiments * 5 / 100) << ever_significant;
  // The reason sequential tests exist: peeking at the fixed-horizon test inflates errors.
  EXPECT_GT(naive_ever_significant, kExperiments * 15 / 100) << naive_ever_significant;
}

TEST(SimulationTest, ZTestPowerMatchesThePlan) {
  const int64_t n = *SampleSizeProportions(0.10, 0.12, 0.05, 0.8);
  std::mt19937_64 rng(17);
  std::binomial_distribution<int64_t> control(n, 0.10), treatment(n, 0.12);
  int detected = 0;
  const int kExperiments = 2000;
  for (int i = 0; i < kExperiments; ++i) {
    detected += TwoProportionZTest({control(rng), n}, {treatment(rng), n})->p_value < 0.05;
  }
  // Planned 80%; binomial sd over 2000 runs is 0.9 points; allow 3 points.
  EXPECT_NEAR(static_cast<double>(detected) / kExperiments, 0.80, 0.03);
}

}  // namespace
}  // namespace abgate::stats

namespace abgate::stats {
namespace {

// The radix-sorted path (large inputs) against the rank-sum formula computed independently:
// AUC = (sum of positive midranks - n1 (n1 + 1) / 2) / (n1 n0), with ties, negative scores and
// -0.0 / 0.0 (equal, so tied).
TEST(AucLargeInputs, RadixPathMatchesTheRankSumFormula) {
  common::Xoshiro256 rng(2026);
  const size_t n = 200000;
  std::vector<double> scores(n);
  std::vector<int> labels(n);
  for (size_t i = 0; i < n; ++i) {
    const int bucket = static_cast<int>(rng() % 2001) - 1000;  // many ties
    scores[i] = bucket == 0 ? ((rng() & 1) ? -0.0 : 0.0) : bucket / 1000.0;
    labels[i] = rng.NextDouble() < 0.2 + 0.3 * (scores[i] + 1) / 2 ? 1 : 0;
  }
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  double rank_sum = 0;
  int64_t n1 = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && scores[order[j]] == scores[order[i]]) ++j;
    const double midrank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;
    for (size_t k = i; k < j; ++k) {
      if (labels[order[k]]) {
        rank_sum += midrank;
        ++n1;
      }
    }
    i = j;
  }
  const double n0 = static_cast<double>(n) - static_cast<double>(n1);
  const double expected = (rank_sum - static_cast<double>(n1) * (n1 + 1) / 2) / (static_cast<double>(n1) * n0);
  auto auc = ComputeAuc(scores, labels);
  ASSERT_TRUE(auc.ok()) << auc.status();
  EXPECT_NEAR(auc->value, expected, 1e-12);
  EXPECT_GT(auc->value, 0.55);
}

}  // namespace
}  // namespace abgate::stats
