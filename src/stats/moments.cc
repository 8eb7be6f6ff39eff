#include "stats/moments.h"

#include "common/strings.h"

namespace abgate::stats {

absl::StatusOr<double> Moments::Variance() const {
  if (n < 2) return absl::FailedPreconditionError(StrCat("variance needs at least 2 observations, have ", n));
  return m2 / static_cast<double>(n - 1);
}

absl::StatusOr<double> Moments::VarianceOfMean() const {
  auto v = Variance();
  if (!v.ok()) return v.status();
  return *v / static_cast<double>(n);
}

absl::StatusOr<double> Proportion::Rate() const {
  if (trials <= 0) return absl::FailedPreconditionError("a proportion needs at least 1 trial");
  if (successes < 0 || successes > trials) {
    return absl::InvalidArgumentError(StrCat("successes ", successes, " outside [0, ", trials, "]"));
  }
  return static_cast<double>(successes) / static_cast<double>(trials);
}

absl::StatusOr<double> Proportion::VarianceOfMean() const {
  auto p = Rate();
  if (!p.ok()) return p.status();
  return *p * (1 - *p) / static_cast<double>(trials);
}

Moments Proportion::AsMoments() const {
  Moments m;
  m.n = trials;
  if (trials == 0) return m;
  const double p = static_cast<double>(successes) / static_cast<double>(trials);
  m.mean = p;
  m.m2 = static_cast<double>(successes) * (1 - p) * (1 - p) + static_cast<double>(trials - successes) * p * p;
  return m;
}

}  // namespace abgate::stats
