#include "stats/sequential.h"

#include <cmath>

#include "common/strings.h"

namespace abgate::stats {

absl::StatusOr<SequentialResult> MixtureSequentialTest(double estimate, double variance, int64_t n, double alpha,
                                                       double tuning_n) {
  if (n < 2) return absl::FailedPreconditionError(StrCat("a sequential test needs at least 2 units, have ", n));
  if (!(variance > 0) || !std::isfinite(variance) || !std::isfinite(estimate)) {
    return absl::FailedPreconditionError("a sequential test needs a finite estimate with positive variance");
  }
  if (!(alpha > 0 && alpha < 1) || !(tuning_n > 0)) {
    return absl::InvalidArgumentError("alpha must be in (0, 1) and the tuning parameter positive");
  }
  const double nd = static_cast<double>(n);
  const double s2 = variance * nd;
  const double rho2 = (-2 * std::log(alpha) + std::log(-2 * std::log(alpha) + 1)) / tuning_n;
  const double nr = nd * rho2;
  // log Lambda, kept in logs so large effects do not overflow.
  const double log_lambda = -0.5 * std::log1p(nr) + estimate * estimate * nd * nd * rho2 / (2 * s2 * (1 + nr));
  SequentialResult out;
  out.p_value = log_lambda <= 0 ? 1.0 : std::exp(-log_lambda);
  const double half = std::sqrt(s2) * std::sqrt(2 * (nr + 1) / (nd * nd * rho2) * std::log(std::sqrt(nr + 1) / alpha));
  out.ci = {estimate - half, estimate + half};
  return out;
}

}  // namespace abgate::stats
