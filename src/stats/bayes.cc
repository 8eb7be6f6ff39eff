#include "stats/bayes.h"

#include <cmath>

#include "stats/distributions.h"

namespace abgate::stats {
namespace {

double LogBeta(double a, double b) { return std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b); }

}  // namespace

absl::StatusOr<double> ChanceToBeatBinomial(const Proportion& control, const Proportion& treatment) {
  if (control.trials <= 0 || treatment.trials <= 0) {
    return absl::FailedPreconditionError("chance to beat needs at least 1 trial per arm");
  }
  const double a_c = 1.0 + static_cast<double>(control.successes);
  const double b_c = 1.0 + static_cast<double>(control.trials - control.successes);
  const double a_t = 1.0 + static_cast<double>(treatment.successes);
  const double b_t = 1.0 + static_cast<double>(treatment.trials - treatment.successes);
  if (treatment.successes > 2'000'000) {
    const double m_c = a_c / (a_c + b_c), m_t = a_t / (a_t + b_t);
    const double v_c = a_c * b_c / ((a_c + b_c) * (a_c + b_c) * (a_c + b_c + 1));
    const double v_t = a_t * b_t / ((a_t + b_t) * (a_t + b_t) * (a_t + b_t + 1));
    return NormalCdf((m_t - m_c) / std::sqrt(v_c + v_t));
  }
  // P(p_t > p_c) = sum_{i=0}^{a_t-1} B(a_c+i, b_c+b_t) / ((b_t+i) B(1+i, b_t) B(a_c, b_c)).
  const double base = LogBeta(a_c, b_c);
  double total = 0;
  for (int64_t i = 0; i < static_cast<int64_t>(a_t); ++i) {
    const double di = static_cast<double>(i);
    total += std::exp(LogBeta(a_c + di, b_c + b_t) - std::log(b_t + di) - LogBeta(1 + di, b_t) - base);
  }
  return std::min(1.0, std::max(0.0, total));
}

absl::StatusOr<double> ChanceToBeatGaussian(const Moments& control, const Moments& treatment) {
  auto vc = control.VarianceOfMean();
  if (!vc.ok()) return vc.status();
  auto vt = treatment.VarianceOfMean();
  if (!vt.ok()) return vt.status();
  if (!(*vc + *vt > 0)) return absl::FailedPreconditionError("no variance in either arm");
  return NormalCdf((treatment.mean - control.mean) / std::sqrt(*vc + *vt));
}

}  // namespace abgate::stats
