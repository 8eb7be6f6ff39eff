#include "stats/bandit.h"

#include <cmath>

#include "common/strings.h"
#include "stats/distributions.h"

namespace abgate::stats {
namespace {

// Standard normal by Box–Muller (one of the pair; simple and portable across standard
// libraries, unlike std::normal_distribution).
double Normal(common::Xoshiro256& rng) {
  double u = rng.NextDouble();
  while (u <= 0) u = rng.NextDouble();
  return std::sqrt(-2 * std::log(u)) * std::cos(2 * M_PI * rng.NextDouble());
}

// Gamma(shape, 1) by Marsaglia & Tsang (2000), doi:10.1145/358407.358414; shape >= 1 here.
double Gamma(double shape, common::Xoshiro256& rng) {
  const double d = shape - 1.0 / 3, c = 1 / std::sqrt(9 * d);
  for (;;) {
    double x, v;
    do {
      x = Normal(rng);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const double u = rng.NextDouble();
    if (u < 1 - 0.0331 * x * x * x * x) return d * v;
    if (u > 0 && std::log(u) < 0.5 * x * x + d * (1 - v + std::log(v))) return d * v;
  }
}

}  // namespace

absl::StatusOr<std::vector<double>> ThompsonWeights(std::span<const BanditArm> arms, double floor, int draws,
                                                    common::Xoshiro256& rng) {
  const size_t k = arms.size();
  if (k < 2) return absl::InvalidArgumentError("a bandit needs at least two arms");
  if (!(floor >= 0 && floor * static_cast<double>(k) <= 1 + 1e-12)) {
    return absl::InvalidArgumentError(StrCat("the floor must be in [0, 1/", k, "]"));
  }
  if (draws < 1) return absl::InvalidArgumentError("draws must be >= 1");
  for (const auto& a : arms) {
    if (a.trials < 0 || a.successes < 0 || a.successes > a.trials) {
      return absl::InvalidArgumentError("each arm needs 0 <= successes <= trials");
    }
  }
  std::vector<int64_t> wins(k, 0);
  for (int d = 0; d < draws; ++d) {
    size_t best = 0;
    double best_value = -1;
    for (size_t i = 0; i < k; ++i) {
      // Beta(a, b) = X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b); a, b >= 1 with the uniform prior.
      const double x = Gamma(1.0 + static_cast<double>(arms[i].successes), rng);
      const double y = Gamma(1.0 + static_cast<double>(arms[i].trials - arms[i].successes), rng);
      const double theta = x / (x + y);
      if (theta > best_value) {
        best_value = theta;
        best = i;
      }
    }
    ++wins[best];
  }
  std::vector<double> weights(k);
  const double free = 1 - floor * static_cast<double>(k);
  for (size_t i = 0; i < k; ++i) weights[i] = floor + free * static_cast<double>(wins[i]) / draws;
  return weights;
}

absl::StatusOr<std::vector<IpwEstimate>> IpwMeans(std::span<const PropensityObservation> units, int arms,
                                                  double alpha) {
  if (arms < 1) return absl::InvalidArgumentError("at least one arm");
  struct Sums {
    int64_t n = 0;
    double w = 0, wy = 0;
  };
  std::vector<Sums> sums(arms);
  for (const auto& u : units) {
    if (u.arm < 0 || u.arm >= arms) return absl::InvalidArgumentError(StrCat("arm ", u.arm, " out of range"));
    if (!(u.propensity > 0 && u.propensity <= 1) || !std::isfinite(u.value)) {
      return absl::InvalidArgumentError("propensities must be in (0, 1] and values finite");
    }
    auto& s = sums[u.arm];
    ++s.n;
    s.w += 1 / u.propensity;
    s.wy += u.value / u.propensity;
  }
  std::vector<IpwEstimate> out(arms);
  for (int a = 0; a < arms; ++a) {
    if (sums[a].n < 2) return absl::FailedPreconditionError(StrCat("arm ", a, " has fewer than 2 units"));
    out[a].units = sums[a].n;
    out[a].mean = sums[a].wy / sums[a].w;
  }
  std::vector<double> ss(arms, 0);  // second pass: sum((y - mu)^2 / p^2)
  for (const auto& u : units) {
    const double r = (u.value - out[u.arm].mean) / u.propensity;
    ss[u.arm] += r * r;
  }
  const double z = NormalQuantile(1 - alpha / 2);
  for (int a = 0; a < arms; ++a) {
    out[a].variance = ss[a] / (sums[a].w * sums[a].w);
    const double half = z * std::sqrt(out[a].variance);
    out[a].ci = {out[a].mean - half, out[a].mean + half};
  }
  return out;
}

absl::StatusOr<IpwEstimate> IpwOfSums(const IpwSums& s, double alpha) {
  if (s.n < 2) return absl::FailedPreconditionError(StrCat("fewer than 2 units (", s.n, ")"));
  if (!(s.w > 0)) return absl::FailedPreconditionError("no weight");
  IpwEstimate out;
  out.units = s.n;
  out.mean = s.wy / s.w;
  const double ss = std::max(0.0, s.wyy2 - 2 * out.mean * s.wy2 + out.mean * out.mean * s.w2);
  out.variance = ss / (s.w * s.w);
  const double half = NormalQuantile(1 - alpha / 2) * std::sqrt(out.variance);
  out.ci = {out.mean - half, out.mean + half};
  return out;
}

}  // namespace abgate::stats
