// The decision rule, in one place. Every caller that decides or shows a decision — `abgate
// analyze`, `GET …/results`, `abgate promote --winner auto`, every controller look, the demo,
// the HTML report, the dashboard, registry tags and MLflow runs — gets it from `Decide`.
//
// The rule:
//  1. The pre-declared primary metric decides. Its k-1 comparisons against control form the
//     primary family; their always-valid (mixture SPRT) p-values are Holm-adjusted within it.
//     A treatment wins when its adjusted sequential p < alpha and it is better; the best such
//     treatment is promoted. Secondary metrics and AUC are reported with their own adjustment
//     and never decide.
//  2. Guardrails are separate, labelled one-sided sequential tests per treatment, each at alpha
//     (not adjusted): the primary metric significantly worse than control; with serving
//     counters, the error rate above its maximum and significantly above control's, and more
//     than 1% of requests significantly often slower than the p99 limit. A treatment that fails
//     one cannot win; when no treatment wins and one failed, the decision is to roll back.
//  3. A sample-ratio mismatch blocks promotion ("investigate"); a failed guardrail still rolls
//     back (the safe direction).
//  4. Otherwise: continue (with the closest treatment's numbers, or "no data").
// Pure and thread-safe.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "analysis/report.h"

namespace abgate::analysis {

// Serving counters of one arm over the analysed window (the gateway's health endpoint).
struct ServingHealth {
  int64_t attempts = 0;
  int64_t failures = 0;
  std::vector<std::pair<double, int64_t>> latency_buckets;  // (upper bound ms, cumulative count); +Inf last
};
// The upper bound of the histogram bucket holding the 99th percentile (infinity past the last).
double P99Ms(const ServingHealth& h);

struct DecisionPolicy {
  std::string primary_metric;  // empty: the report's
  double alpha = 0.05;
  double max_error_rate = 0;      // 0: not checked
  double max_p99_latency_ms = 0;  // 0: not checked
};

// Decides from a report (its comparisons and SRM) and, optionally, serving counters per arm
// name over the same window (arms missing from `serving` skip the serving guardrails).
Decision Decide(const Report& report, const DecisionPolicy& policy,
                const std::map<std::string, ServingHealth>& serving = {});

}  // namespace abgate::analysis
