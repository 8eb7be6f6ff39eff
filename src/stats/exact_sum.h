// ExactSum: the exact sum of doubles, kept as a fixed-point number over the whole double range
// (a "small superaccumulator": 32-bit digits in 64-bit words, carries propagated lazily; Neal
// 2015, "Fast exact summation using small and large superaccumulators", arXiv:1505.05571).
// Adding and subtracting values in any order leaves the same state, so a sum kept up to date
// as observations come and go (a live dashboard's per-arm statistics) equals one computed
// afresh, to the last bit. ~540 bytes; Add costs a few integer operations. Value type; not
// thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <utility>

#include "stats/moments.h"

namespace abgate::stats {

class ExactSum {
 public:
  // Adds x (finite; a non-finite x is ignored and counted in nonfinite()).
  void Add(double x);
  void Subtract(double x) { Add(-x); }
  // Adds (sign 1) or subtracts (sign -1) another exact sum.
  void Merge(const ExactSum& o, int sign = 1);
  // Adds a * b exactly (its rounded product and the rounding error, by FMA).
  void AddProduct(double a, double b);
  // The sum as hi + lo (hi the sum rounded, lo the rest rounded): a function of the exact sum
  // only, whatever the order of the additions.
  std::pair<double, double> Value2() const;
  double Value() const { return Value2().first; }
  int64_t nonfinite() const { return nonfinite_; }

 private:
  static constexpr int kDigitBits = 32;
  // Digit i weighs 2^(32 i - 1074): digits 0..65 hold any double's bits, the rest carries.
  static constexpr int kDigits = 68;
  void Normalize();
  std::array<int64_t, kDigits> digit_{};
  int64_t adds_ = 0;  // since the last Normalize: each add moves a digit by < 2^32
  int64_t nonfinite_ = 0;
};

// Count, mean and M2 of n values from their exact sum and exact sum of squares (each square
// added with AddProduct(x, x)): M2 = S2 - 2 mean S1 + n mean^2, summed exactly, so it does not
// cancel as the textbook formula in doubles does. A function of the exact sums only.
Moments MomentsOf(int64_t n, const ExactSum& sum, const ExactSum& sum_squares);

}  // namespace abgate::stats
