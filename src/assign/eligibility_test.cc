#include "assign/eligibility.h"

#include <cmath>
#include <fstream>
#include <set>
#include <string>

#include <boost/json.hpp>

#include "assign/allocation.h"
#include "gtest/gtest.h"
#include "testing/test_paths.h"

namespace abgate::assign {
namespace {

namespace json = boost::json;

TEST(EligibilityTest, NamespaceMatchesGrowthBookSdkGoldenFile) {
  // 449 rows from the GrowthBook JS SDK itself (tests/tools/gen_namespace_vectors.js): its
  // inNamespace and whole runs of an experiment with a namespace, which abgate must reproduce
  // with its own namespace rule and allocation.
  std::ifstream in(std::string(ABGATE_TEST_DATA_DIR) + "/assign/growthbook_namespace_vectors.jsonl");
  std::string line;
  int rows = 0, inside = 0;
  while (std::getline(in, line)) {
    const auto v = json::parse(line).as_object();
    if (v.contains("_provenance")) continue;
    const std::string unit(v.at("unit").as_string());
    const auto& range = v.at("range").as_array();
    const NamespaceRange ns{std::string(v.at("namespace").as_string()), range[0].to_number<double>(),
                            range[1].to_number<double>()};
    const bool expected = v.at("in_namespace").as_bool();
    EXPECT_EQ(InNamespace(ns, unit), expected) << ns.name << "|" << unit;
    std::vector<double> weights;
    for (const auto& w : v.at("weights").as_array()) weights.push_back(w.to_number<double>());
    const auto allocation = Allocation::Create(weights, 1.0);
    ASSERT_TRUE(allocation.ok());
    const int arm = InNamespace(ns, unit)
                        ? allocation->ArmForBucket(SeededHasher(std::string(v.at("seed").as_string())).Bucket(unit), 0)
                        : -1;
    EXPECT_EQ(arm, v.at("variation").as_int64()) << unit;
    inside += expected;
    ++rows;
  }
  EXPECT_EQ(rows, 449);
  EXPECT_GT(inside, 50);  // both outcomes are exercised
  EXPECT_LT(inside, 400);
}

TEST(EligibilityTest, DisjointRangesNeverShareAUnit) {
  const NamespaceRange a{"ranking", 0, 0.5}, b{"ranking", 0.5, 1}, other{"pricing", 0, 0.5};
  int in_a = 0, in_both_namespaces = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string unit = "user-" + std::to_string(i);
    EXPECT_NE(InNamespace(a, unit), InNamespace(b, unit)) << unit;  // exactly one of the two halves
    in_a += InNamespace(a, unit);
    in_both_namespaces += InNamespace(a, unit) && InNamespace(other, unit);
  }
  EXPECT_NEAR(in_a, 10000, 400);
  // Another namespace is an independent hash: about a quarter are in both first halves.
  EXPECT_NEAR(in_both_namespaces, 5000, 400);
}

TEST(EligibilityTest, HoldoutIsTheSameUnitsEverywhereAndIndependentOfExperiments) {
  const Holdout holdout("abgate-holdout", 5);
  const Holdout again("abgate-holdout", 5);  // a restart builds it again from the config
  int held = 0, held_and_b = 0;
  const Allocation allocation = *Allocation::Create({50, 50}, 1.0);
  const SeededHasher exp("hyatt_booking_ab");
  for (int i = 0; i < 40000; ++i) {
    const std::string unit = "u" + std::to_string(i);
    EXPECT_EQ(holdout.Contains(unit), again.Contains(unit));
    if (holdout.Contains(unit)) {
      ++held;
      held_and_b += allocation.ArmForBucket(exp.Bucket(unit), 0) == 1;
    }
  }
  EXPECT_NEAR(held, 2000, 200);             // 5%
  EXPECT_NEAR(held_and_b, held / 2, 120);   // not correlated with the experiment's own hash
  EXPECT_FALSE(Holdout().Contains("u1"));
  EXPECT_FALSE(Holdout("s", 0).active());
  int all = 0;
  for (int i = 0; i < 100; ++i) all += Holdout("s", 100).Contains(std::to_string(i));
  EXPECT_EQ(all, 100);
}

}  // namespace
}  // namespace abgate::assign
