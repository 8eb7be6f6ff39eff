#include "assign/allocation.h"

#include <string>

#include "assign/hash.h"
#include "gtest/gtest.h"

namespace abgate::assign {
namespace {

constexpr int64_t kHourUs = 3600LL * 1000 * 1000;

TEST(AllocationTest, TableAgreesWithGrowthBookRangesForEveryBucket) {
  auto a = Allocation::Create({80, 20}, 0.9);
  ASSERT_TRUE(a.ok()) << a.status();
  const auto ranges = GetBucketRanges(2, 0.9, std::vector<double>{0.8, 0.2});
  for (uint32_t k = 0; k < kNumBuckets; ++k) {
    ASSERT_EQ(a->ArmForBucket(k, 0), ChooseVariation(k / 10000.0, ranges)) << k;
  }
}

TEST(AllocationTest, ProbabilityIsTheArmsShareOfBuckets) {
  auto a = Allocation::Create({0.1234567, 0.8765433}, 0.9);
  ASSERT_TRUE(a.ok()) << a.status();
  int counts[2] = {0, 0};
  for (uint32_t k = 0; k < kNumBuckets; ++k) {
    if (const int arm = a->ArmForBucket(k, 0); arm >= 0) ++counts[arm];
  }
  EXPECT_NEAR(a->ProbabilityAt(0, 0), counts[0] / 10000.0, 1e-12);
  EXPECT_NEAR(a->ProbabilityAt(1, 0), counts[1] / 10000.0, 1e-12);
  EXPECT_NEAR(a->ProbabilityAt(0, 0) + a->ProbabilityAt(1, 0), 0.9, 1.5e-4);  // 9001 buckets: GrowthBook's ranges
}

TEST(AllocationTest, SplitsTenThousandUnitsWithinTolerance) {
  auto a = Allocation::Create({80, 20}, 1.0);
  ASSERT_TRUE(a.ok());
  SeededHasher hasher("hyatt_booking_ab");
  int counts[2] = {0, 0};
  for (int i = 0; i < 10000; ++i) counts[a->ArmForBucket(hasher.Bucket("u" + std::to_string(i)), 0)]++;
  // Binomial(10000, 0.2): sd 40; 4 sd either side.
  EXPECT_NEAR(counts[1], 2000, 160);
}

TEST(AllocationTest, RejectsBadWeightsAndCoverage) {
  EXPECT_FALSE(Allocation::Create({}, 1).ok());
  EXPECT_FALSE(Allocation::Create({1, -1}, 1).ok());
  EXPECT_FALSE(Allocation::Create({0, 0}, 1).ok());
  EXPECT_FALSE(Allocation::Create({1, std::nan("")}, 1).ok());
  EXPECT_FALSE(Allocation::Create({1, 1}, 1.5).ok());
  EXPECT_FALSE(Allocation::Create({1, 1}, -0.1).ok());
  EXPECT_FALSE(Allocation::Create({1, 1}, 1, {{kHourUs, {1, 1, 1}}}).ok());
  EXPECT_FALSE(Allocation::Create({1, 1}, 1, {{2 * kHourUs, {1, 1}}, {kHourUs, {1, 2}}}).ok());
}

TEST(AllocationTest, RampSelectsStepByElapsedTime) {
  auto a = Allocation::Create({90, 10}, 1, {{24 * kHourUs, {50, 50}}, {48 * kHourUs, {0, 100}}});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->StepIndexAt(0), 0);
  EXPECT_EQ(a->StepIndexAt(24 * kHourUs - 1), 0);
  EXPECT_EQ(a->StepIndexAt(24 * kHourUs), 1);
  EXPECT_EQ(a->StepIndexAt(100 * kHourUs), 2);
  EXPECT_DOUBLE_EQ(a->WeightsAt(30 * kHourUs)[1], 0.5);
}

TEST(AllocationTest, RampingUpNeverMovesAUnitOutOfTheGrowingArm) {
  auto a = Allocation::Create({90, 10}, 1, {{kHourUs, {50, 50}}, {2 * kHourUs, {10, 90}}});
  ASSERT_TRUE(a.ok()) << a.status();
  for (uint32_t k = 0; k < kNumBuckets; ++k) {
    if (a->ArmForBucket(k, 0) == 1) {
      EXPECT_EQ(a->ArmForBucket(k, kHourUs), 1) << k;
      EXPECT_EQ(a->ArmForBucket(k, 2 * kHourUs), 1) << k;
    }
  }
}

TEST(AllocationTest, RejectsNonMonotoneRampNamingTheArm) {
  // A: 80 -> 40, B: 10 -> 30, C: 10 -> 30. B grows but its range [0.8, 0.9) moves to [0.4, 0.7).
  const std::vector<std::string> names = {"A", "B", "C"};
  auto a = Allocation::Create({80, 10, 10}, 1, {{kHourUs, {40, 30, 30}}}, names);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("arm B"), std::string::npos) << a.status();
}

TEST(AllocationTest, CoverageLeavesUnitsOutside) {
  auto a = Allocation::Create({1, 1}, 0.5);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->ArmForBucket(0, 0), 0);
  EXPECT_EQ(a->ArmForBucket(2500, 0), -1);  // [0, 0.25) is A, [0.5, 0.75) is B
  EXPECT_EQ(a->ArmForBucket(5000, 0), 1);
  EXPECT_EQ(a->ArmForBucket(7500, 0), -1);
}

TEST(AllocationTest, ZeroWeightArmGetsNoUnits) {
  auto a = Allocation::Create({0, 100}, 1);
  ASSERT_TRUE(a.ok());
  for (uint32_t k = 0; k < kNumBuckets; ++k) ASSERT_EQ(a->ArmForBucket(k, 0), 1);
}

}  // namespace
}  // namespace abgate::assign

namespace abgate::assign {
namespace {

TEST(AllocationTest, ArmKeepingItsWeightMustKeepItsUnits) {
  // B keeps 20% but its range would move from [0.7, 0.9) to [0.5, 0.7).
  auto a = Allocation::Create({70, 20, 10}, 1, {{0, {50, 20, 30}}});
  EXPECT_FALSE(a.ok());
  // Already-normalised weights whose sum rounds to 0.9999999999999999 behave the same.
  EXPECT_FALSE(Allocation::Create({0.7, 0.2, 0.1}, 1, {{0, {50, 20, 30}}}).ok());
}

}  // namespace
}  // namespace abgate::assign
