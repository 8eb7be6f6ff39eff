#include "stats/multiple_testing.h"

#include <algorithm>
#include <numeric>

namespace abgate::stats {
namespace {

std::vector<size_t> Order(std::span<const double> p) {
  std::vector<size_t> idx(p.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return p[a] < p[b]; });
  return idx;
}

}  // namespace

// Holm (1979): the i-th smallest p (0-based) times (m - i), made monotone non-decreasing.
std::vector<double> HolmBonferroni(std::span<const double> p_values) {
  const size_t m = p_values.size();
  std::vector<double> out(m);
  double running = 0;
  const auto idx = Order(p_values);
  for (size_t i = 0; i < m; ++i) {
    running = std::max(running, std::min(1.0, p_values[idx[i]] * static_cast<double>(m - i)));
    out[idx[i]] = running;
  }
  return out;
}

// Benjamini & Hochberg (1995): p_(i) * m / i, made monotone from the largest down.
std::vector<double> BenjaminiHochberg(std::span<const double> p_values) {
  const size_t m = p_values.size();
  std::vector<double> out(m);
  double running = 1;
  const auto idx = Order(p_values);
  for (size_t k = m; k-- > 0;) {
    running = std::min(running, p_values[idx[k]] * static_cast<double>(m) / static_cast<double>(k + 1));
    out[idx[k]] = std::min(1.0, running);
  }
  return out;
}

}  // namespace abgate::stats
