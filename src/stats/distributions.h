// Distribution functions used by the tests (Boost.Math underneath, header-only). Arguments
// are validated by the callers; these are pure and thread-safe.
#pragma once

namespace abgate::stats {

double NormalCdf(double z);
double NormalSf(double z);          // 1 - cdf, accurate in the upper tail
double NormalQuantile(double p);    // p in (0, 1)
double TwoSidedNormalP(double z);
double StudentTSf(double t, double df);  // df > 0
double StudentTQuantile(double p, double df);  // p in (0, 1), df > 0
double TwoSidedStudentTP(double t, double df);
double ChiSquaredSf(double x, double df);  // df > 0

}  // namespace abgate::stats
