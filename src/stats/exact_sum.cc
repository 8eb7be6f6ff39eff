#include "stats/exact_sum.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace abgate::stats {

void ExactSum::Add(double x) {
  if (!std::isfinite(x)) {
    ++nonfinite_;
    return;
  }
  if (x == 0) return;
  uint64_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  const bool negative = bits >> 63;
  const int biased = static_cast<int>((bits >> 52) & 0x7FF);
  uint64_t mantissa = bits & ((uint64_t{1} << 52) - 1);
  // x = ±mantissa · 2^(position - 1074), position >= 0.
  int position = 0;
  if (biased != 0) {
    mantissa |= uint64_t{1} << 52;
    position = biased - 1;
  }
  const unsigned __int128 v = static_cast<unsigned __int128>(mantissa) << (position % kDigitBits);
  const int d = position / kDigitBits;
  const auto lo = static_cast<int64_t>(static_cast<uint64_t>(v) & 0xFFFFFFFFu);
  const auto mid = static_cast<int64_t>(static_cast<uint64_t>(v >> 32) & 0xFFFFFFFFu);
  const auto hi = static_cast<int64_t>(static_cast<uint64_t>(v >> 64));
  if (negative) {
    digit_[d] -= lo;
    digit_[d + 1] -= mid;
    digit_[d + 2] -= hi;
  } else {
    digit_[d] += lo;
    digit_[d + 1] += mid;
    digit_[d + 2] += hi;
  }
  // Each digit moves by < 2^32 per add: carry before 2^30 adds can overflow 63 bits.
  if (++adds_ >= (int64_t{1} << 30)) Normalize();
}

void ExactSum::Merge(const ExactSum& o, int sign) {
  // Both normalised first, so no digit can overflow.
  ExactSum other = o;
  other.Normalize();
  Normalize();
  for (int i = 0; i < kDigits; ++i) digit_[i] += sign * other.digit_[i];
  nonfinite_ += o.nonfinite_;
  Normalize();
}

void ExactSum::AddProduct(double a, double b) {
  const double p = a * b;
  Add(p);
  Add(std::fma(a, b, -p));
}

// Digits 0..kDigits-2 into [0, 2^32), the top digit signed: one representation per value.
void ExactSum::Normalize() {
  for (int i = 0; i + 1 < kDigits; ++i) {
    const int64_t carry = digit_[i] >> kDigitBits;  // floor division (arithmetic shift)
    digit_[i] -= carry * (int64_t{1} << kDigitBits);
    digit_[i + 1] += carry;
  }
  adds_ = 0;
}

std::pair<double, double> ExactSum::Value2() const {
  ExactSum n = *this;
  n.Normalize();
  const bool negative = n.digit_[kDigits - 1] < 0;
  if (negative) {  // |sum|, so the conversion below sees no sign-extension digits
    for (auto& d : n.digit_) d = -d;
    n.Normalize();
  }
  // Every digit times its weight is exact in a double; summed from the top with error-free
  // additions (Knuth's TwoSum), hi + lo is the sum to ~2^-106 relative, a function of the
  // digits only.
  double hi = 0, lo = 0;
  for (int i = kDigits - 1; i >= 0; --i) {
    if (n.digit_[i] == 0) continue;
    const double t = std::ldexp(static_cast<double>(n.digit_[i]), kDigitBits * i - 1074);
    const double s = hi + t;
    const double bb = s - hi;
    lo += (hi - (s - bb)) + (t - bb);
    hi = s;
  }
  const double s = hi + lo;
  const double rest = lo - (s - hi);
  return negative ? std::pair(-s, -rest) : std::pair(s, rest);
}

Moments MomentsOf(int64_t n, const ExactSum& sum, const ExactSum& sum_squares) {
  Moments m;
  if (n <= 0) return m;
  const double count = static_cast<double>(n);
  const auto [s_hi, s_lo] = sum.Value2();
  // mean = (s_hi + s_lo) / n, with the quotient's remainder folded back in.
  const double q = s_hi / count;
  const double r = std::fma(-q, count, s_hi) + s_lo;
  m.n = n;
  m.mean = q + r / count;
  ExactSum m2 = sum_squares;
  m2.AddProduct(-2 * m.mean, s_hi);
  m2.AddProduct(-2 * m.mean, s_lo);
  const double sq = m.mean * m.mean;
  m2.AddProduct(count, sq);
  m2.AddProduct(count, std::fma(m.mean, m.mean, -sq));
  m.m2 = n > 1 ? std::max(0.0, m2.Value()) : 0.0;
  return m;
}

}  // namespace abgate::stats
