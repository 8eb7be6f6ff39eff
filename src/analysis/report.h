// The analysis report as a typed value: what `Analyze` returns, what every renderer (text,
// JSON, HTML, the dashboard, registry tags, MLflow run metrics) reads, and what a report that
// came over HTTP is parsed back into. The JSON form is DESIGN.md's `analyze --format json`
// (keys added over time, never renamed). `ReportFromJson` never throws: a report from an old or
// broken peer is an InvalidArgument naming the offending field. Thread-compatible values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "absl/status/statusor.h"

namespace abgate::analysis {

enum class MetricKind { kBinary, kContinuous };

struct Interval {
  double low = 0;
  double high = 0;
};

// One metric of one arm: the mean (rate for binary metrics) with its CI, or why there is none.
struct MetricSummary {
  std::string name;
  MetricKind kind = MetricKind::kBinary;
  int64_t n = 0;
  std::optional<double> mean;
  std::optional<Interval> ci;
  std::string insufficient_data;  // non-empty: no mean
};

// Model quality of one arm from its scored predictions with labels.
struct ModelQuality {
  int64_t n = 0;
  std::optional<double> auc;
  std::optional<Interval> auc_ci;
  std::string auc_insufficient_data;
  std::optional<double> log_loss;
  std::optional<double> calibration_error;
  int calibration_bins = 10;
};

// A model version that served an arm (an arm defined by alias can move between versions).
struct VersionShare {
  std::string version;
  int64_t exposures = 0;
};

struct ArmReport {
  std::string arm;
  std::string model_version;  // the versions that served it, comma-separated, in first-seen order
  std::vector<VersionShare> versions;  // empty when the input did not say
  int64_t units = 0;
  int64_t exposures = 0;
  std::vector<MetricSummary> metrics;  // in the report's metric order
  std::optional<ModelQuality> quality;  // present when the arm has scored predictions

  const MetricSummary* Metric(std::string_view name) const;
};

// Comparisons are adjusted for multiplicity within their family: the primary metric's k-1
// comparisons against control decide; everything else (secondary metrics, AUC) is reported
// with its own adjustment and never decides.
enum class Family { kPrimary, kSecondary };
std::string_view FamilyName(Family f);

// CUPED on one comparison (Deng, Xu, Kohavi, Walker 2013): when `applied`, the comparison's own
// numbers (diff, CIs, lift, p-values, chance to beat) are those of the adjusted means, so the
// decision reads the adjusted effect; the raw comparison is kept here for reference.
struct CupedReport {
  std::string covariate;    // the outcome metric whose pre-exposure sum per unit is X
  bool applied = false;
  std::string not_applied;  // why the comparison is unadjusted (e.g. the covariate has no variance)
  double theta = 0;         // cov(X, Y) / var(X), pooled over both arms
  double variance_reduction = 0;  // 1 - Var(adjusted diff) / Var(raw diff)
  double unadjusted_diff = 0;
  Interval unadjusted_diff_ci;
  std::optional<double> unadjusted_lift;
  double unadjusted_p_value = 1;
};

struct ComparisonReport {
  std::string metric;
  std::string control;
  std::string treatment;
  Family family = Family::kSecondary;
  std::string insufficient_data;  // non-empty: nothing below is set but `significant` = false
  std::string test;               // two_proportion_z, welch_t, delong
  double diff = 0;
  Interval diff_ci;
  std::optional<double> lift;  // absent when control's mean is 0 (or for AUC)
  std::optional<Interval> lift_ci;
  double statistic = 0;
  double df = 0;
  double p_value = 1;
  double p_value_adjusted = 1;  // within `family`, fixed-horizon p-values
  std::optional<double> sequential_p_value;           // always-valid (mixture SPRT); absent for AUC
  std::optional<Interval> sequential_ci;              // its confidence sequence for diff
  std::optional<double> sequential_p_value_adjusted;  // within `family`, sequential p-values
  std::optional<double> chance_to_beat;
  std::optional<CupedReport> cuped;  // the metric names a covariate
  int family_size = 0;             // comparisons in the family's fixed-horizon adjustment
  int sequential_family_size = 0;  // comparisons in its sequential adjustment
  // Under the always-valid test, adjusted within the family: sequential_p_value_adjusted < alpha
  // (fixed-horizon p_value_adjusted for AUC, which has no sequential test).
  bool significant = false;
};

struct ChiSquaredReport {
  std::string metric;
  std::string insufficient_data;
  double statistic = 0;
  int df = 0;
  double p_value = 1;
};

struct SrmReport {
  std::vector<int64_t> observed;
  bool checked = false;
  std::string reason;  // why not checked
  std::vector<double> expected_share;
  double chi2 = 0;
  double p_value = 1;
  bool mismatch = false;
  double threshold = 0.001;
  std::string note;
  std::string period;  // which weights were in force for the check (empty: the configured ones)
};

struct OutcomeCounts {
  int64_t attributed = 0;
  int64_t before_exposure = 0;
  int64_t after_window = 0;
  int64_t unknown_unit = 0;
  int64_t covariate = 0;  // pre-exposure outcomes of a CUPED covariate, used as X
  int64_t duplicates = 0;  // holdout: one outcome posted to several experiments, counted once
};

// One guardrail, a labelled one-sided sequential test of one treatment: "error_rate" (the
// candidate fails significantly more often than allowed), "p99_latency" (more than 1% of its
// requests significantly often slower than the limit) or "metric:<primary>" (significantly
// worse than control on the primary metric).
struct GuardrailResult {
  enum class Status { kPass, kFail, kNotChecked };
  std::string name;
  std::string arm;
  Status status = Status::kNotChecked;
  double observed = 0;  // error rate, slow share, or diff on the metric
  double limit = 0;     // max error rate, 0.01, or 0
  std::optional<double> sequential_p_value;
  std::string detail;  // one human line
};
std::string_view GuardrailStatusName(GuardrailResult::Status s);

// The decision and what it rests on (decision.h makes it).
struct Decision {
  std::string action = "continue";  // promote | rollback | continue | investigate
  std::optional<std::string> winner;
  std::string metric;  // the primary metric
  std::string reason;  // one human line, numbers rounded
  // The primary comparison the decision rests on (the winner's, else the failing or the
  // closest treatment's), copied from the report.
  std::optional<ComparisonReport> evidence;
  std::vector<GuardrailResult> guardrails;
  std::vector<std::string> failed_arms;  // treatments that failed a guardrail
  bool srm_mismatch = false;
};

struct TimelinePoint {
  int64_t units = 0;
  int64_t ts_us = 0;
  double lift = 0;
  Interval ci;
};
struct TimelineSeries {
  std::string treatment;
  std::string metric;
  std::vector<TimelinePoint> points;
};

// Shadow traffic over the window: the served arm's requests also scored by the shadow arm.
struct ShadowSummary {
  struct Latency {
    double mean = 0, p50 = 0, p99 = 0;
  };
  std::string arm;
  std::string shadow_arm;
  int64_t requests = 0;
  int64_t shadow_failures = 0;
  int64_t compared = 0;
  std::optional<double> disagreement;  // scores on different sides of 0.5
  std::optional<double> mean_abs_score_diff;
  std::optional<double> score_correlation;
  Latency primary_latency_ms, shadow_latency_ms;
};
// The shadow model against the served one on the same requests, from the requests' outcomes
// (paired): AUC difference with DeLong's variance for correlated ROC curves, log-loss difference
// with the variance of the per-request differences; both shadow - served, fixed-horizon z tests.
struct ShadowEvaluation {
  std::string arm;         // served
  std::string shadow_arm;  // the candidate, scored on the same requests
  int64_t requests = 0;    // with both scores and a label
  int64_t positives = 0;
  std::string insufficient_data;  // non-empty: nothing below is set
  double auc = 0, shadow_auc = 0;
  double auc_diff = 0;
  Interval auc_diff_ci;
  double auc_p_value = 1;
  double log_loss = 0, shadow_log_loss = 0;
  double log_loss_diff = 0;
  Interval log_loss_diff_ci;
  double log_loss_p_value = 1;
  // At alpha: the AUC significantly lower, or the log loss significantly higher while the AUC
  // is not significantly higher (worse); the mirror image (better). The ranking (AUC) decides
  // when the two disagree; never both.
  bool shadow_worse = false;
  bool shadow_better = false;
};

boost::json::object ToJson(const ShadowSummary& s);
absl::StatusOr<ShadowSummary> ShadowFromJson(const boost::json::value& json);

// A bandit experiment (routing_mode: bandit): traffic followed the outcomes, so the
// fixed-horizon comparisons do not apply and none is reported. Each arm's rate is estimated by
// inverse-propensity weighting of its requests (each weighted by 1 / the probability it was
// drawn with, as the gateway recorded it), and the arms are ranked by the posterior
// probability of being best.
struct BanditArmReport {
  std::string arm;
  int64_t requests = 0;   // requests whose outcomes can be complete (Thompson's trials)
  int64_t successes = 0;  // of them, with a positive metric
  double weight = 0;      // its share of the traffic now
  double prob_best = 0;   // P(best) under Beta(1 + successes, 1 + failures) posteriors
  std::optional<double> ipw_mean;
  std::optional<Interval> ipw_ci;
  std::string insufficient_data;  // non-empty: no IPW estimate
};
struct BanditReport {
  std::string metric;
  double floor = 0;
  std::vector<BanditArmReport> arms;
  int64_t without_probability = 0;  // requests with no recorded probability (overrides, older rows): not in IPW
  std::string note;                 // why there are no p-values, for people
};
boost::json::object ToJson(const BanditReport& b);

// How the experiment ended, once it has (promote/rollback through the admin API, by a person or
// the controller; the config's `conclusion`). The analysis still compares the arms as they were
// tested (its control is the control the experiment ran with) and shows this next to it.
struct Conclusion {
  std::string action;  // promote | rollback
  std::string winner;  // the arm serving everyone since
  std::string winner_version;
  std::string tested_control;
  int64_t at_us = 0;
  std::string reason;  // the decision's reason as the caller gave it (may be empty)
};

struct Report {
  std::string experiment;
  std::string unit = "user";
  std::string control;
  double alpha = 0.05;
  std::string adjustment = "holm";  // of the secondary family; the primary family is always Holm
  std::string primary_metric;
  std::vector<std::string> metrics;  // primary first
  std::vector<ArmReport> arms;
  std::vector<ComparisonReport> comparisons;
  std::vector<ChiSquaredReport> chi_squared;  // k > 2 only
  SrmReport srm;
  int64_t multiple_exposure_units = 0;
  std::optional<OutcomeCounts> outcomes;
  int64_t maturing_units = 0;  // first exposed too recently for their outcomes to be complete
  std::string window;          // what data the report covers, for people ("since …", "all")
  Decision decision;
  std::vector<TimelineSeries> timeline;
  std::optional<ShadowSummary> shadow;
  std::vector<ShadowEvaluation> shadow_evaluation;  // one per (served arm, shadow arm)
  std::optional<BanditReport> bandit;  // bandit experiments only
  std::optional<Conclusion> conclusion;  // concluded experiments only

  const ArmReport* Arm(std::string_view name) const;
  const ComparisonReport* Comparison(std::string_view metric, std::string_view treatment) const;
  MetricKind KindOf(std::string_view metric) const;  // binary unless an arm says otherwise
};

// The JSON of DESIGN.md, plus `family`, `family_size`, `sequential_p_value_adjusted`,
// `decision.evidence` and `decision.guardrails`.
boost::json::object ToJson(const Report& report);
// Parses a report (from `ToJson`, possibly through HTTP). Never throws; InvalidArgument naming
// the field when a required one is missing or of the wrong type. Unknown keys are ignored.
absl::StatusOr<Report> ReportFromJson(const boost::json::value& json);

boost::json::object ToJson(const Decision& decision);
absl::StatusOr<Decision> DecisionFromJson(const boost::json::value& json);

}  // namespace abgate::analysis
