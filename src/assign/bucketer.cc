#include "assign/bucketer.h"

namespace abgate::assign {

std::vector<BucketRange> GetBucketRanges(int num_variations, double coverage,
                                         std::span<const double> weights) {
  if (coverage < 0) coverage = 0;
  if (coverage > 1) coverage = 1;
  std::vector<double> equal(num_variations > 0 ? num_variations : 0,
                            num_variations > 0 ? 1.0 / num_variations : 0.0);
  std::span<const double> w = weights;
  if (w.size() != equal.size()) w = equal;
  double total = 0;
  for (double x : w) total += x;
  if (total < 0.99 || total > 1.01) w = equal;

  std::vector<BucketRange> ranges;
  ranges.reserve(w.size());
  double cumulative = 0;
  for (double x : w) {
    const double start = cumulative;
    cumulative += x;
    ranges.push_back({start, start + coverage * x});
  }
  return ranges;
}

int ChooseVariation(double n, std::span<const BucketRange> ranges) {
  for (size_t i = 0; i < ranges.size(); ++i) {
    if (ranges[i].Contains(n)) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace abgate::assign
