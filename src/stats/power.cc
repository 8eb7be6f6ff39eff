#include "stats/power.h"

#include <cmath>

#include "stats/distributions.h"

namespace abgate::stats {
namespace {

absl::Status Check(double alpha, double power) {
  if (!(alpha > 0 && alpha < 1) || !(power > 0 && power < 1)) {
    return absl::InvalidArgumentError("alpha and power must be in (0, 1)");
  }
  return absl::OkStatus();
}

absl::Status CheckRate(double p) {
  if (!(p > 0 && p < 1)) return absl::InvalidArgumentError("rates must be in (0, 1)");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<int64_t> SampleSizeProportions(double baseline, double target, double alpha, double power) {
  if (auto s = Check(alpha, power); !s.ok()) return s;
  if (auto s = CheckRate(baseline); !s.ok()) return s;
  if (auto s = CheckRate(target); !s.ok()) return s;
  if (baseline == target) return absl::InvalidArgumentError("baseline and target must differ");
  const double z = NormalQuantile(1 - alpha / 2) + NormalQuantile(power);
  const double v = baseline * (1 - baseline) + target * (1 - target);
  return static_cast<int64_t>(std::ceil(z * z * v / ((target - baseline) * (target - baseline))));
}

absl::StatusOr<double> PowerProportions(double baseline, double target, int64_t n_per_arm, double alpha) {
  if (auto s = Check(alpha, 0.5); !s.ok()) return s;
  if (auto s = CheckRate(baseline); !s.ok()) return s;
  if (auto s = CheckRate(target); !s.ok()) return s;
  if (n_per_arm < 1) return absl::InvalidArgumentError("n_per_arm must be >= 1");
  const double se = std::sqrt((baseline * (1 - baseline) + target * (1 - target)) / static_cast<double>(n_per_arm));
  const double shift = std::fabs(target - baseline) / se;
  const double z = NormalQuantile(1 - alpha / 2);
  return NormalCdf(shift - z) + NormalCdf(-shift - z);
}

absl::StatusOr<double> MdeProportions(double baseline, int64_t n_per_arm, double alpha, double power) {
  if (auto s = Check(alpha, power); !s.ok()) return s;
  if (auto s = CheckRate(baseline); !s.ok()) return s;
  if (n_per_arm < 1) return absl::InvalidArgumentError("n_per_arm must be >= 1");
  const double z = NormalQuantile(1 - alpha / 2) + NormalQuantile(power);
  // Fixed point on delta (the target's variance depends on delta); converges in a few steps.
  double delta = z * std::sqrt(2 * baseline * (1 - baseline) / static_cast<double>(n_per_arm));
  for (int i = 0; i < 100; ++i) {
    const double target = std::min(baseline + delta, 1 - 1e-12);
    const double next = z * std::sqrt((baseline * (1 - baseline) + target * (1 - target)) / static_cast<double>(n_per_arm));
    if (std::fabs(next - delta) < 1e-15) break;
    delta = next;
  }
  if (baseline + delta >= 1) return absl::FailedPreconditionError("no detectable effect below a rate of 1 at this size");
  return delta;
}

absl::StatusOr<int64_t> SampleSizeMeans(double sigma, double delta, double alpha, double power) {
  if (auto s = Check(alpha, power); !s.ok()) return s;
  if (!(sigma > 0) || delta == 0 || !std::isfinite(delta)) {
    return absl::InvalidArgumentError("sigma must be positive and delta non-zero");
  }
  const double z = NormalQuantile(1 - alpha / 2) + NormalQuantile(power);
  return static_cast<int64_t>(std::ceil(2 * z * z * sigma * sigma / (delta * delta)));
}

absl::StatusOr<double> PowerMeans(double sigma, double delta, int64_t n_per_arm, double alpha) {
  if (auto s = Check(alpha, 0.5); !s.ok()) return s;
  if (!(sigma > 0) || n_per_arm < 1) return absl::InvalidArgumentError("sigma must be positive and n_per_arm >= 1");
  const double shift = std::fabs(delta) / (sigma * std::sqrt(2.0 / static_cast<double>(n_per_arm)));
  const double z = NormalQuantile(1 - alpha / 2);
  return NormalCdf(shift - z) + NormalCdf(-shift - z);
}

absl::StatusOr<double> MdeMeans(double sigma, int64_t n_per_arm, double alpha, double power) {
  if (auto s = Check(alpha, power); !s.ok()) return s;
  if (!(sigma > 0) || n_per_arm < 1) return absl::InvalidArgumentError("sigma must be positive and n_per_arm >= 1");
  const double z = NormalQuantile(1 - alpha / 2) + NormalQuantile(power);
  return z * sigma * std::sqrt(2.0 / static_cast<double>(n_per_arm));
}

}  // namespace abgate::stats
