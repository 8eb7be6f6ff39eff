// Allocation: how the hash space [0, 1) is split between an experiment's arms over time.
//
// Built once from weights, coverage and an optional time-based ramp, validated (non-negative
// finite weights, increasing step times, and monotone ramps: an arm whose weight does not go
// down keeps every unit it already had), then immutable. Because GrowthBook hash v2 only
// produces buckets k/10000, each step precomputes the arm of all 10000 buckets with
// GrowthBook's own range arithmetic, so an assignment is one table lookup and still
// bit-identical to `chooseVariation(hash(seed, unit, 2), getBucketRanges(...))`.
//
// Thread-safe after construction (all methods are const).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "assign/bucketer.h"

namespace abgate::assign {

inline constexpr uint32_t kNumBuckets = 10000;
inline constexpr int kMaxArms = 100;

struct RampStep {
  int64_t after_us = 0;         // time since the experiment's start when this step begins
  std::vector<double> weights;  // one raw (unnormalised) weight per arm
};

class Allocation {
 public:
  // Validates and precomputes. `weights` apply from the start until the first ramp step.
  // InvalidArgument names the offending step and arm when the ramp is not monotone.
  static absl::StatusOr<Allocation> Create(std::vector<double> weights, double coverage,
                                           std::vector<RampStep> ramp = {},
                                           std::span<const std::string> arm_names = {});

  // Arm index for an integer bucket in [0, 10000) at `elapsed_us` since the start, or -1 when
  // the bucket falls outside coverage.
  int ArmForBucket(uint32_t bucket, int64_t elapsed_us) const {
    return StepAt(elapsed_us).table[bucket];
  }
  // Normalised weights (sum 1) and GrowthBook ranges in force at `elapsed_us`.
  std::span<const double> WeightsAt(int64_t elapsed_us) const { return StepAt(elapsed_us).normalized; }
  // The probability that a uniformly drawn bucket lands in `arm` at `elapsed_us` (its share of
  // the 10000 buckets): the assignment probability of a request routed at random (bandits).
  double ProbabilityAt(int arm, int64_t elapsed_us) const { return StepAt(elapsed_us).probability[arm]; }
  // Index of the ramp step in force (0 = the base weights) at `elapsed_us`.
  int StepIndexAt(int64_t elapsed_us) const;

  int num_arms() const { return num_arms_; }
  double coverage() const { return coverage_; }

 private:
  struct Step {
    int64_t after_us = 0;
    std::vector<double> normalized;
    std::vector<BucketRange> ranges;
    std::vector<int8_t> table;  // kNumBuckets entries: arm index or -1
    std::vector<double> probability;  // per arm: its buckets / kNumBuckets
  };
  Allocation() = default;
  const Step& StepAt(int64_t elapsed_us) const { return steps_[StepIndexAt(elapsed_us)]; }

  int num_arms_ = 0;
  double coverage_ = 1;
  std::vector<Step> steps_;  // steps_[0] holds the base weights from time 0
};

}  // namespace abgate::assign
