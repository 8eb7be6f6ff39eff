// Simulation checks with fixed seeds: the fixed-horizon test's A/A false-positive rate, the
// sequential test's false-positive rate under continuous monitoring, and the z-test's power
// against the planned power.
#include <random>

#include "gtest/gtest.h"
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
