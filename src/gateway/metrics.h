// Gateway metrics, rendered in the Prometheus text format at GET /metrics.
//
// Counters are lock-free atomics reached through stable pointers: an experiment snapshot
// resolves its ArmMetrics once when it is compiled, so the request path never looks anything
// up. Series are created on demand under a mutex and never deleted (a removed experiment keeps
// its history until restart). Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "common/mutex.h"

namespace abgate::gateway {

inline constexpr std::array<double, 14> kLatencyBucketsSeconds = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

struct LatencyHistogram {
  std::array<std::atomic<uint64_t>, kLatencyBucketsSeconds.size() + 1> buckets{};  // last: +Inf
  std::atomic<uint64_t> count{0};
  std::atomic<uint64_t> sum_us{0};
  void Observe(int64_t us);
};

// Outlier ejection state of one arm's upstream (gateway/outlier.h), kept beside its counters so
// that it survives snapshot swaps. Steady-clock microseconds.
struct OutlierState {
  std::atomic<int> consecutive_failures{0};
  std::atomic<int64_t> ejected_until_us{0};  // ejected while now < this
  std::atomic<int> streak{0};                // recent ejections: the next one lasts streak+1 base times
  std::atomic<uint64_t> ejections{0};        // counter
  std::atomic<uint64_t> ejected_requests{0};  // requests assigned while ejected, served by control
};

enum class ArmBackend : int { kUnknown = 0, kUpstream = 1, kInProcess = 2 };

struct ArmMetrics {
  std::array<std::atomic<uint64_t>, 600> requests_by_status{};  // index = HTTP status; its own requests
  // Requests this arm (the control) served because the assigned arm failed: counted apart, so
  // control's own traffic stays comparable (label fallback="true").
  std::array<std::atomic<uint64_t>, 600> fallback_requests_by_status{};
  std::atomic<uint64_t> fallbacks{0};  // requests this arm failed that control then served
  std::atomic<uint64_t> upstream_errors{0};
  LatencyHistogram upstream_latency;   // the model call alone
  LatencyHistogram request_latency;    // end to end, from the request to the reply, by assigned arm
  std::atomic<int> backend{0};         // ArmBackend of the config in force
  OutlierState outlier;

  // What the controller's error-rate guardrail reads (GET …/health): every request routed to
  // the arm, and those it failed. A request skipped because the arm was ejected counts as an
  // attempt and a failure: ejection must not hide the failures that caused it.
  uint64_t attempts() const {
    return upstream_latency.count.load(std::memory_order_relaxed) +
           outlier.ejected_requests.load(std::memory_order_relaxed);
  }
  uint64_t failures() const {
    return upstream_errors.load(std::memory_order_relaxed) + outlier.ejected_requests.load(std::memory_order_relaxed);
  }
};

struct ExperimentMetrics {
  std::atomic<uint64_t> random_unit{0};  // unit-based mode, request without a unit
  std::atomic<uint64_t> outside_experiment{0};  // outside coverage, paused or stopped
};

class Metrics {
 public:
  ArmMetrics* Arm(const std::string& experiment, const std::string& arm);
  ExperimentMetrics* Experiment(const std::string& experiment);
  // Requests answered before an arm was chosen (bad input, unknown experiment), by route.
  void CountRejected(std::string_view route, int status);

  // Appends every series, plus `extra` lines (gauges owned by others), in text format 0.0.4.
  std::string Render(const std::function<void(std::string&)>& extra) const;

 private:
  mutable common::Mutex mu_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<ArmMetrics>> arms_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::unique_ptr<ExperimentMetrics>> experiments_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, int>, uint64_t> rejected_ ABSL_GUARDED_BY(mu_);
};

// Escapes a Prometheus label value (backslash, quote, newline).
std::string EscapeLabel(std::string_view v);

}  // namespace abgate::gateway
