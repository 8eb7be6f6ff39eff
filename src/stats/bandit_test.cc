// Thompson allocation and IPW: against the exact Beta chance to beat, edge cases, and a
// fixed-seed bandit simulation.
#include "stats/bandit.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "stats/bayes.h"

namespace abgate::stats {
namespace {

TEST(ThompsonTest, ProbabilityOfBeingBestMatchesTheExactChanceToBeat) {
  // Two arms with no floor: the weight of arm 1 is P(p1 > p0), which bayes.h computes exactly.
  common::Xoshiro256 rng(18);
  const int draws = 200000;
  for (const auto& [a, b] : std::vector<std::pair<BanditArm, BanditArm>>{
           {{100, 10}, {100, 14}}, {{1000, 100}, {1000, 100}}, {{5000, 520}, {4000, 380}}, {{3, 0}, {2, 1}}}) {
    auto w = ThompsonWeights(std::vector<BanditArm>{a, b}, 0, draws, rng);
    ASSERT_TRUE(w.ok()) << w.status();
    const double exact = *ChanceToBeatBinomial({a.successes, a.trials}, {b.successes, b.trials});
    EXPECT_NEAR((*w)[1], exact, 4 * std::sqrt(exact * (1 - exact) / draws) + 1e-9) << a.trials << " " << b.trials;
    EXPECT_NEAR((*w)[0] + (*w)[1], 1, 1e-12);
  }
}

TEST(ThompsonTest, FloorIsKeptAndResultsAreReproducible) {
  const std::vector<BanditArm> arms = {{10000, 1000}, {10000, 1500}, {10000, 900}};
  common::Xoshiro256 rng(7), again(7);
  auto w = ThompsonWeights(arms, 0.1, 5000, rng);
  ASSERT_TRUE(w.ok());
  EXPECT_NEAR((*w)[1], 0.8, 1e-9);  // clearly best: everything above the floors
  EXPECT_NEAR((*w)[0], 0.1, 1e-9);
  EXPECT_NEAR((*w)[2], 0.1, 1e-9);
  EXPECT_EQ(*w, *ThompsonWeights(arms, 0.1, 5000, again));
  // No data yet: every arm equally likely to be best.
  auto prior = ThompsonWeights(std::vector<BanditArm>(4), 0.05, 40000, rng);
  for (double x : *prior) EXPECT_NEAR(x, 0.25, 0.01);
  EXPECT_EQ(ThompsonWeights(std::vector<BanditArm>(1), 0, 10, rng).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ThompsonWeights(arms, 0.4, 10, rng).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ThompsonWeights(std::vector<BanditArm>{{1, 2}, {1, 0}}, 0, 10, rng).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(IpwTest, EqualPropensitiesGiveThePlainMeanAndErrorsAreNamed) {
  std::vector<PropensityObservation> units;
  for (int i = 0; i < 10; ++i) units.push_back({i % 2, static_cast<double>(i), 0.5});
  auto r = IpwMeans(units, 2);
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ((*r)[0].mean, 4);  // 0 2 4 6 8
  EXPECT_DOUBLE_EQ((*r)[1].mean, 5);
  // Var = sum((y - mu)^2 / p^2) / (sum 1/p)^2 = (40 * 4) / 100 = 1.6
  EXPECT_NEAR((*r)[0].variance, 1.6, 1e-12);
  EXPECT_EQ(IpwMeans(units, 1).status().code(), absl::StatusCode::kInvalidArgument);
  units.push_back({0, 1, 0});
  EXPECT_EQ(IpwMeans(units, 2).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(IpwMeans(std::vector<PropensityObservation>{{0, 1, 1}}, 1).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// One bandit run: `batches` of `batch` units assigned with the weights in force, outcomes drawn
// from the true rates, the weights recomputed after each batch from everything so far.
struct BanditRun {
  std::vector<double> weights;
  std::vector<PropensityObservation> units;
};

BanditRun Simulate(const std::vector<double>& rates, double floor, int batches, int batch, uint64_t seed, int draws) {
  common::Xoshiro256 rng(seed), thompson(seed ^ 0x5eed);
  BanditRun run;
  run.weights.assign(rates.size(), 1.0 / rates.size());
  std::vector<BanditArm> arms(rates.size());
  for (int b = 0; b < batches; ++b) {
    for (int i = 0; i < batch; ++i) {
      double u = rng.NextDouble(), acc = 0;
      size_t arm = 0;
      for (; arm + 1 < rates.size(); ++arm) {
        acc += run.weights[arm];
        if (u < acc) break;
      }
      const bool success = rng.NextDouble() < rates[arm];
      ++arms[arm].trials;
      arms[arm].successes += success;
      run.units.push_back({static_cast<int>(arm), success ? 1.0 : 0.0, run.weights[arm]});
    }
    run.weights = *ThompsonWeights(arms, floor, draws, thompson);
  }
  return run;
}

TEST(BanditSimulationTest, BetterArmTakesTheTrafficWorseKeepsItsFloorAndIpwRecoversTheRates) {
  // Fixed seed: booking rates 10% (control) vs 12%, floor 10%, 40 updates of 1,000 units.
  const std::vector<double> rates = {0.10, 0.12};
  const BanditRun run = Simulate(rates, 0.10, 40, 1000, 20261127, 10000);
  EXPECT_GT(run.weights[1], 0.6);
  EXPECT_GE(run.weights[0], 0.10 - 1e-12);
  EXPECT_NEAR(run.weights[0], 0.10, 0.02);  // down to its floor, not below
  int64_t to_better = 0;
  for (const auto& u : run.units) to_better += u.arm == 1;
  EXPECT_GT(to_better, 24000);  // most of the 40,000 units went to the better arm
  auto est = IpwMeans(run.units, 2);
  ASSERT_TRUE(est.ok());
  for (int a = 0; a < 2; ++a) {
    EXPECT_LT((*est)[a].ci.low, rates[a]) << a;
    EXPECT_GT((*est)[a].ci.high, rates[a]) << a;
  }
}

TEST(BanditSimulationTest, IpwIntervalsCoverTheTrueRatesAboutNinetyFivePercentOfTheTime) {
  // 200 fixed-seed runs (smaller, coarser): the 95% intervals should cover each arm's true rate
  // in roughly 95% of runs; the plain mean of the starved arm is biased low, IPW much less.
  const std::vector<double> rates = {0.10, 0.12};
  int covered = 0, total = 0;
  double ipw_bias = 0, naive_bias = 0;
  for (int r = 0; r < 200; ++r) {
    const BanditRun run = Simulate(rates, 0.10, 20, 500, 1000 + r, 1000);
    auto est = IpwMeans(run.units, 2);
    ASSERT_TRUE(est.ok());
    for (int a = 0; a < 2; ++a) {
      covered += (*est)[a].ci.low < rates[a] && rates[a] < (*est)[a].ci.high;
      ++total;
    }
    double s = 0;
    int64_t n = 0;
    for (const auto& u : run.units) {
      if (u.arm == 0) {
        s += u.value;
        ++n;
      }
    }
    ipw_bias += (*est)[0].mean - rates[0];
    naive_bias += s / n - rates[0];
  }
  EXPECT_GT(covered, 0.91 * total);
  EXPECT_LT(covered, 0.99 * total);
  EXPECT_LT(std::fabs(ipw_bias / 200), std::fabs(naive_bias / 200));
}

}  // namespace
}  // namespace abgate::stats
