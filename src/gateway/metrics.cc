#include "gateway/metrics.h"

#include <chrono>

#include "absl/strings/str_format.h"
#include "common/strings.h"

namespace abgate::gateway {

void LatencyHistogram::Observe(int64_t us) {
  const double seconds = us / 1e6;
  size_t i = 0;
  while (i < kLatencyBucketsSeconds.size() && seconds > kLatencyBucketsSeconds[i]) ++i;
  buckets[i].fetch_add(1, std::memory_order_relaxed);
  count.fetch_add(1, std::memory_order_relaxed);
  sum_us.fetch_add(static_cast<uint64_t>(us < 0 ? 0 : us), std::memory_order_relaxed);
}

ArmMetrics* Metrics::Arm(const std::string& experiment, const std::string& arm) {
  common::MutexLock lock(mu_);
  auto& slot = arms_[{experiment, arm}];
  if (!slot) slot = std::make_unique<ArmMetrics>();
  return slot.get();
}

ExperimentMetrics* Metrics::Experiment(const std::string& experiment) {
  common::MutexLock lock(mu_);
  auto& slot = experiments_[experiment];
  if (!slot) slot = std::make_unique<ExperimentMetrics>();
  return slot.get();
}

void Metrics::CountRejected(std::string_view route, int status) {
  common::MutexLock lock(mu_);
  ++rejected_[{std::string(route), status}];
}

std::string EscapeLabel(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

namespace {

void AppendHistogram(std::string& out, std::string_view name, const std::string& labels, const LatencyHistogram& h) {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < h.buckets.size(); ++i) {
    cumulative += h.buckets[i].load(std::memory_order_relaxed);
    const std::string le = i < kLatencyBucketsSeconds.size() ? absl::StrFormat("%g", kLatencyBucketsSeconds[i]) : "+Inf";
    StrAppend(&out, name, "_bucket{", labels, ",le=\"", le, "\"} ", cumulative, "\n");
  }
  // _count from the same bucket loads, so the +Inf bucket and the count never disagree.
  StrAppend(&out, name, "_sum{", labels, "} ", absl::StrFormat("%.6f", h.sum_us.load(std::memory_order_relaxed) / 1e6), "\n");
  StrAppend(&out, name, "_count{", labels, "} ", cumulative, "\n");
}

}  // namespace

std::string Metrics::Render(const std::function<void(std::string&)>& extra) const {
  std::string out;
  common::MutexLock lock(mu_);
  out += "# HELP abgate_requests_total Requests served, by experiment, serving arm, HTTP status and whether the arm "
         "served them as a fallback for a failed one.\n";
  out += "# TYPE abgate_requests_total counter\n";
  for (const auto& [key, m] : arms_) {
    const std::string labels = StrCat("experiment=\"", EscapeLabel(key.first), "\",arm=\"", EscapeLabel(key.second), "\"");
    for (size_t status = 0; status < m->requests_by_status.size(); ++status) {
      const uint64_t n = m->requests_by_status[status].load(std::memory_order_relaxed);
      if (n) {
        StrAppend(&out, "abgate_requests_total{", labels, ",status=\"", static_cast<int>(status), "\",fallback=\"false\"} ",
                  n, "\n");
      }
      const uint64_t f = m->fallback_requests_by_status[status].load(std::memory_order_relaxed);
      if (f) {
        StrAppend(&out, "abgate_requests_total{", labels, ",status=\"", static_cast<int>(status), "\",fallback=\"true\"} ",
                  f, "\n");
      }
    }
  }
  out += "# HELP abgate_arm_info The arms being served: backend in_process (scored inside the gateway) or upstream.\n";
  out += "# TYPE abgate_arm_info gauge\n";
  for (const auto& [key, m] : arms_) {
    const int backend = m->backend.load(std::memory_order_relaxed);
    if (backend == static_cast<int>(ArmBackend::kUnknown)) continue;
    StrAppend(&out, "abgate_arm_info{experiment=\"", EscapeLabel(key.first), "\",arm=\"", EscapeLabel(key.second),
              "\",backend=\"", backend == static_cast<int>(ArmBackend::kInProcess) ? "in_process" : "upstream", "\"} 1\n");
  }
  out += "# HELP abgate_fallbacks_total Requests whose assigned arm failed and control served instead.\n";
  out += "# TYPE abgate_fallbacks_total counter\n";
  for (const auto& [key, m] : arms_) {
    StrAppend(&out, "abgate_fallbacks_total{experiment=\"", EscapeLabel(key.first), "\",arm=\"",
              EscapeLabel(key.second), "\"} ", m->fallbacks.load(), "\n");
  }
  out += "# HELP abgate_upstream_errors_total Failed upstream calls (connect, timeout, 5xx, bad reply).\n";
  out += "# TYPE abgate_upstream_errors_total counter\n";
  for (const auto& [key, m] : arms_) {
    StrAppend(&out, "abgate_upstream_errors_total{experiment=\"", EscapeLabel(key.first), "\",arm=\"",
              EscapeLabel(key.second), "\"} ", m->upstream_errors.load(), "\n");
  }
  const int64_t now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::steady_clock::now().time_since_epoch())
                             .count();
  out += "# HELP abgate_arm_ejected Whether the arm's upstream is ejected now (outlier detection): its requests go to control.\n";
  out += "# TYPE abgate_arm_ejected gauge\n";
  for (const auto& [key, m] : arms_) {
    StrAppend(&out, "abgate_arm_ejected{experiment=\"", EscapeLabel(key.first), "\",arm=\"", EscapeLabel(key.second),
              "\"} ", m->outlier.ejected_until_us.load() > now_us ? 1 : 0, "\n");
  }
  out += "# HELP abgate_arm_ejections_total Times the arm's upstream was ejected after consecutive failures.\n";
  out += "# TYPE abgate_arm_ejections_total counter\n";
  for (const auto& [key, m] : arms_) {
    StrAppend(&out, "abgate_arm_ejections_total{experiment=\"", EscapeLabel(key.first), "\",arm=\"",
              EscapeLabel(key.second), "\"} ", m->outlier.ejections.load(), "\n");
  }
  out += "# HELP abgate_ejected_requests_total Requests assigned to an ejected arm and served by control at once.\n";
  out += "# TYPE abgate_ejected_requests_total counter\n";
  for (const auto& [key, m] : arms_) {
    StrAppend(&out, "abgate_ejected_requests_total{experiment=\"", EscapeLabel(key.first), "\",arm=\"",
              EscapeLabel(key.second), "\"} ", m->outlier.ejected_requests.load(), "\n");
  }
  out += "# HELP abgate_upstream_latency_seconds Model call per arm (upstream round trip, or in-process scoring).\n";
  out += "# TYPE abgate_upstream_latency_seconds histogram\n";
  for (const auto& [key, m] : arms_) {
    const std::string labels = StrCat("experiment=\"", EscapeLabel(key.first), "\",arm=\"", EscapeLabel(key.second), "\"");
    AppendHistogram(out, "abgate_upstream_latency_seconds", labels, m->upstream_latency);
  }
  out += "# HELP abgate_request_duration_seconds End to end per assigned arm: from the request to the reply, "
         "fallbacks and in-gateway work included.\n";
  out += "# TYPE abgate_request_duration_seconds histogram\n";
  for (const auto& [key, m] : arms_) {
    const int backend = m->backend.load(std::memory_order_relaxed);
    const std::string labels =
        StrCat("experiment=\"", EscapeLabel(key.first), "\",arm=\"", EscapeLabel(key.second), "\",backend=\"",
               backend == static_cast<int>(ArmBackend::kInProcess) ? "in_process" : "upstream", "\"");
    AppendHistogram(out, "abgate_request_duration_seconds", labels, m->request_latency);
  }
  out += "# HELP abgate_random_unit_total Requests without a unit in a unit-based mode (assigned at random).\n";
  out += "# TYPE abgate_random_unit_total counter\n";
  for (const auto& [name, m] : experiments_) {
    StrAppend(&out, "abgate_random_unit_total{experiment=\"", EscapeLabel(name), "\"} ", m->random_unit.load(), "\n");
  }
  out += "# HELP abgate_outside_experiment_total Requests served by control outside the experiment (coverage, paused, stopped).\n";
  out += "# TYPE abgate_outside_experiment_total counter\n";
  for (const auto& [name, m] : experiments_) {
    StrAppend(&out, "abgate_outside_experiment_total{experiment=\"", EscapeLabel(name), "\"} ",
              m->outside_experiment.load(), "\n");
  }
  out += "# HELP abgate_rejected_requests_total Requests refused before assignment, by route and status.\n";
  out += "# TYPE abgate_rejected_requests_total counter\n";
  for (const auto& [key, n] : rejected_) {
    StrAppend(&out, "abgate_rejected_requests_total{route=\"", EscapeLabel(key.first), "\",status=\"", key.second,
              "\"} ", n, "\n");
  }
  extra(out);
  return out;
}

}  // namespace abgate::gateway
