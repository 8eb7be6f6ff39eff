#include "gateway/outlier.h"

#include <algorithm>
#include <cmath>

namespace abgate::gateway {

bool IsEjected(const CompiledExperiment& exp, int arm, int64_t now_us) {
  return exp.arms[arm].metrics->outlier.ejected_until_us.load(std::memory_order_relaxed) > now_us;
}

int64_t RecordUpstreamResult(const config::OutlierDetectionConfig& od, const CompiledExperiment& exp, int arm,
                             bool ok, int64_t now_us) {
  OutlierState& s = exp.arms[arm].metrics->outlier;
  if (ok) {
    if (s.consecutive_failures.load(std::memory_order_relaxed) != 0) s.consecutive_failures.store(0, std::memory_order_relaxed);
    return 0;
  }
  if (od.consecutive_failures <= 0 || arm == exp.control || !exp.config.fallback_to_control) return 0;
  if (s.consecutive_failures.fetch_add(1, std::memory_order_relaxed) + 1 < od.consecutive_failures) return 0;
  int64_t until = s.ejected_until_us.load(std::memory_order_relaxed);
  if (until > now_us) return 0;  // already out: calls sent before the ejection are failing too
  // At most max_ejection_percent of the arms out at once, at least one (Envoy's rule); control
  // is never among them, so the fallback always exists.
  int out = 0;
  for (size_t i = 0; i < exp.arms.size(); ++i) out += IsEjected(exp, static_cast<int>(i), now_us);
  const int allowed =
      std::max(1, static_cast<int>(std::floor(static_cast<double>(exp.arms.size()) * od.max_ejection_percent / 100)));
  if (out >= allowed) return 0;
  // Repeated ejections last longer; the streak decays by one per base ejection time spent in
  // service since the last ejection ended (Envoy decrements its multiplier while healthy).
  int streak = s.streak.load(std::memory_order_relaxed);
  if (until > 0) streak = std::max<int64_t>(0, streak - (now_us - until) / od.base_ejection_time_us);
  ++streak;
  const int64_t duration = std::min(od.base_ejection_time_us * streak, od.max_ejection_time_us);
  if (!s.ejected_until_us.compare_exchange_strong(until, now_us + duration)) return 0;  // another thread did
  s.streak.store(streak, std::memory_order_relaxed);
  s.consecutive_failures.store(0, std::memory_order_relaxed);
  s.ejections.fetch_add(1, std::memory_order_relaxed);
  return duration;
}

}  // namespace abgate::gateway
