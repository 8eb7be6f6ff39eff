// Multiple-testing adjustments across arms and metrics. Pure and thread-safe.
#pragma once

#include <span>
#include <vector>

namespace abgate::stats {

// Holm–Bonferroni step-down adjusted p-values (family-wise error), in input order.
std::vector<double> HolmBonferroni(std::span<const double> p_values);
// Benjamini–Hochberg step-up adjusted p-values (false discovery rate), in input order.
std::vector<double> BenjaminiHochberg(std::span<const double> p_values);

}  // namespace abgate::stats
