#include "assign/allocation.h"

#include <cmath>

#include "absl/strings/str_format.h"
#include "common/status_macros.h"

namespace abgate::assign {
namespace {

absl::StatusOr<std::vector<double>> Normalize(const std::vector<double>& weights, size_t num_arms,
                                              std::string_view where) {
  if (weights.size() != num_arms) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: %d weights for %d arms", where,
                                                      weights.size(), num_arms));
  }
  double total = 0;
  for (double w : weights) {
    if (!std::isfinite(w) || w < 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: weights must be finite and >= 0, got %g", where, w));
    }
    total += w;
  }
  if (!(total > 0)) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: weights sum to 0", where));
  }
  std::vector<double> normalized;
  normalized.reserve(weights.size());
  for (double w : weights) normalized.push_back(w / total);
  return normalized;
}

std::string ArmName(std::span<const std::string> names, int i) {
  return i < static_cast<int>(names.size()) ? names[i] : absl::StrFormat("#%d", i);
}

}  // namespace

absl::StatusOr<Allocation> Allocation::Create(std::vector<double> weights, double coverage,
                                              std::vector<RampStep> ramp,
                                              std::span<const std::string> arm_names) {
  const size_t num_arms = weights.size();
  if (num_arms == 0) return absl::InvalidArgumentError("an experiment needs at least one arm");
  if (num_arms > kMaxArms) {
    return absl::InvalidArgumentError(absl::StrFormat("at most %d arms, got %d", kMaxArms, num_arms));
  }
  if (!std::isfinite(coverage) || coverage < 0 || coverage > 1) {
    return absl::InvalidArgumentError(absl::StrFormat("coverage must be in [0, 1], got %g", coverage));
  }
  Allocation a;
  a.num_arms_ = static_cast<int>(num_arms);
  a.coverage_ = coverage;

  std::vector<RampStep> all;
  all.push_back({0, std::move(weights)});
  for (auto& step : ramp) all.push_back(std::move(step));

  for (size_t s = 0; s < all.size(); ++s) {
    const std::string where = s == 0 ? "weights" : absl::StrFormat("ramp step %d", s);
    if (s > 0 && all[s].after_us < 0) {
      return absl::InvalidArgumentError(absl::StrFormat("%s: 'after' must be >= 0", where));
    }
    if (s > 1 && all[s].after_us <= all[s - 1].after_us) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: 'after' must be later than the step before it", where));
    }
    Step step;
    step.after_us = all[s].after_us;
    ABGATE_ASSIGN_OR_RETURN(step.normalized, Normalize(all[s].weights, num_arms, where));
    step.ranges = GetBucketRanges(static_cast<int>(num_arms), coverage, step.normalized);
    step.table.resize(kNumBuckets);
    for (uint32_t k = 0; k < kNumBuckets; ++k) {
      // The same double GrowthBook compares: (fnv % 10000) / 10000.
      step.table[k] = static_cast<int8_t>(ChooseVariation(k / 10000.0, step.ranges));
    }
    // The exact chance of each arm for a uniformly drawn bucket: its share of the 10000 buckets
    // (GrowthBook's ranges, quantised), not the raw weight.
    std::vector<uint32_t> buckets(num_arms, 0);
    for (uint32_t k = 0; k < kNumBuckets; ++k) {
      if (step.table[k] >= 0) ++buckets[step.table[k]];
    }
    step.probability.resize(num_arms);
    for (size_t arm = 0; arm < num_arms; ++arm) step.probability[arm] = static_cast<double>(buckets[arm]) / kNumBuckets;
    if (s > 0) {
      // Monotone ramps: an arm whose weight does not decrease keeps all of its buckets.
      const Step& prev = a.steps_.back();
      for (size_t arm = 0; arm < num_arms; ++arm) {
        // A tolerance, so renormalising (0.2 vs 0.2/0.9999999999999999) is not a decrease.
        if (step.normalized[arm] < prev.normalized[arm] - 1e-9) continue;
        for (uint32_t k = 0; k < kNumBuckets; ++k) {
          if (prev.table[k] == static_cast<int8_t>(arm) && step.table[k] != prev.table[k]) {
            return absl::InvalidArgumentError(absl::StrFormat(
                "%s is not monotone: arm %s keeps or raises its weight but loses units (bucket "
                "%.4f moves to %s); reorder the arms or change the weights so that a growing "
                "arm's range only extends",
                where, ArmName(arm_names, arm), k / 10000.0,
                step.table[k] < 0 ? "no arm" : ArmName(arm_names, step.table[k])));
          }
        }
      }
    }
    a.steps_.push_back(std::move(step));
  }
  return a;
}

int Allocation::StepIndexAt(int64_t elapsed_us) const {
  int index = 0;
  for (size_t s = 1; s < steps_.size(); ++s) {
    if (elapsed_us >= steps_[s].after_us) index = static_cast<int>(s);
  }
  return index;
}

}  // namespace abgate::assign
