// Numbers for people: at most N significant digits, fixed notation for ordinary magnitudes
// (1e-4 <= |x| < 1e7), scientific beyond, trailing zeros dropped. Every human-facing output
// (text and HTML reports, decision lines, logs, the demo) prints through these; JSON and
// registry tags keep full precision. Pure and thread-safe.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>

namespace abgate {

// 0.0015873 → "0.001587", 1234.5678 → "1235", 0.5 → "0.5", 3.2e-09 → "3.2e-09".
inline std::string Human(double x, int significant = 4) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  if (x == 0) return "0";
  const double ax = std::fabs(x);
  char buf[64];
  if (ax < 1e-4 || ax >= 1e7) {
    std::snprintf(buf, sizeof(buf), "%.*e", significant - 1, x);
    std::string s(buf);
    // Drop trailing zeros of the mantissa: 3.200e-09 → 3.2e-09.
    const size_t e = s.find('e');
    size_t end = e;
    while (end > 0 && s[end - 1] == '0') --end;
    if (end > 0 && s[end - 1] == '.') --end;
    return s.substr(0, end) + s.substr(e);
  }
  const int magnitude = static_cast<int>(std::floor(std::log10(ax)));
  int decimals = significant - 1 - magnitude;
  if (decimals < 0) decimals = 0;
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, x);
  std::string s(buf);
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  if (s == "-0") s = "0";
  return s;
}

// A share as a percentage: 0.12345 → "12.35%" (significant digits of the percentage).
inline std::string HumanPercent(double fraction, int significant = 4) { return Human(100 * fraction, significant) + "%"; }

// A p-value: "< 0.0001" below that, else 4 significant digits ("0.001587", "0.0458").
inline std::string HumanP(double p) { return p < 1e-4 ? std::string("< 0.0001") : Human(p, 4); }

// A p-value after its name: "p = 0.0458", or "p < 0.0001".
inline std::string HumanPIs(double p) { return p < 1e-4 ? std::string("p < 0.0001") : "p = " + Human(p, 4); }

// A probability for people: "< 0.01%" and "> 99.99%" at the ends, else a percentage.
inline std::string HumanChance(double p) {
  if (p < 1e-4) return "< 0.01%";
  if (p > 1 - 1e-4) return "> 99.99%";
  return HumanPercent(p, 3);
}

// A count with thousands separators: 1234567 → "1,234,567".
inline std::string WithThousands(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return n < 0 ? "-" + out : out;
}

// A moment for people and tags: 2026-11-27T18:18:54Z (UTC, seconds).
inline std::string HumanUtc(int64_t unix_us) {
  const std::time_t t = static_cast<std::time_t>(unix_us / 1'000'000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace abgate
