// GrowthBook's bucket ranges and variation choice (`getBucketRanges`, `chooseVariation` in
// growthbook/growthbook packages/sdk-js/src/util.ts), reproduced with the same floating-point
// operations in the same order so the ranges are bit-identical. Pure and thread-safe.
#pragma once

#include <span>
#include <vector>

namespace abgate::assign {

// Half-open interval [start, end) of the unit hash space [0, 1).
struct BucketRange {
  double start = 0;
  double end = 0;
  bool Contains(double n) const { return n >= start && n < end; }
  friend bool operator==(const BucketRange&, const BucketRange&) = default;
};

// Ranges for `num_variations` arms. Coverage is clamped to [0, 1]. Like GrowthBook, falls back
// to equal weights when `weights` is empty, has the wrong length, or does not sum to 1 ± 0.01;
// abgate's config validation rejects such weights before they get here.
std::vector<BucketRange> GetBucketRanges(int num_variations, double coverage,
                                         std::span<const double> weights);

// Index of the first range containing `n`, or -1 when none does (unit outside coverage).
int ChooseVariation(double n, std::span<const BucketRange> ranges);

}  // namespace abgate::assign
