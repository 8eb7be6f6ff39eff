#include "stats/distributions.h"

#include <cmath>

#include <boost/math/distributions/chi_squared.hpp>
#include <boost/math/distributions/normal.hpp>
#include <boost/math/distributions/students_t.hpp>

namespace abgate::stats {

namespace bm = boost::math;

double NormalCdf(double z) { return bm::cdf(bm::normal_distribution<>(), z); }
double NormalSf(double z) { return bm::cdf(bm::complement(bm::normal_distribution<>(), z)); }
double NormalQuantile(double p) { return bm::quantile(bm::normal_distribution<>(), p); }
double TwoSidedNormalP(double z) { return 2 * NormalSf(std::fabs(z)); }

double StudentTSf(double t, double df) { return bm::cdf(bm::complement(bm::students_t_distribution<>(df), t)); }
double StudentTQuantile(double p, double df) { return bm::quantile(bm::students_t_distribution<>(df), p); }
double TwoSidedStudentTP(double t, double df) { return 2 * StudentTSf(std::fabs(t), df); }

double ChiSquaredSf(double x, double df) {
  if (x <= 0) return 1;
  return bm::cdf(bm::complement(bm::chi_squared_distribution<>(df), x));
}

}  // namespace abgate::stats
