// Experiment analysis: from per-unit observations to per-arm metrics, comparisons against
// control, SRM, multiple-testing adjustment and a decision (decision.h). The core (Analyze) is
// pure and returns the typed report (report.h); the readers (ab_results.csv, the event store)
// build its input. Thread-compatible values.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "analysis/analysis_state.h"
#include "analysis/report.h"
#include "config/gateway_config.h"
#include "stats/bandit.h"
#include "stats/moments.h"
#include "stats/tests.h"

namespace abgate::events {
class EventReader;  // events/event_reader.h: the store readers below read through it
struct ShadowRow;
}  // namespace abgate::events

namespace abgate::analysis {

struct MetricSpec {
  MetricSpec() = default;
  // Not an aggregate, so {name, kind} lists leave the covariate out without a warning.
  MetricSpec(std::string name_in, MetricKind kind_in = MetricKind::kBinary, std::string covariate = "")
      : name(std::move(name_in)), kind(kind_in), cuped_covariate(std::move(covariate)) {}
  std::string name;
  MetricKind kind = MetricKind::kBinary;
  // CUPED: the outcome metric whose values recorded before the unit's first exposure, summed
  // per unit, are the covariate X (the same name as `name` for the metric's own pre-period).
  // Empty: no adjustment.
  std::string cuped_covariate;
};

// One analysis unit (a user, or a request for request_random experiments).
struct UnitObservation {
  int arm = 0;
  int64_t first_ts_us = 0;     // first exposure; orders the timeline
  // One per metric (0 when the unit had no outcome), then one per covariate of
  // AnalysisInput::covariates (0 without pre-exposure outcomes); inline up to 4.
  absl::InlinedVector<double, 4> values;
  // Bandits (request units): the probability the request's arm was drawn with, as the gateway
  // recorded it; 0 when none was (another mode, an override, an older row).
  float propensity = 0;
  // Unique per unit (the store readers: the unit's 64-bit key; 0: its index in the input).
  // Orders units with the same first exposure, so the timeline does not depend on input order.
  uint64_t key = 0;
};

// One scored prediction with its binary label, for model quality.
struct ScoredPrediction {
  int arm = 0;
  double score = 0;
  int label = 0;
};

// Requests served by `arm` and also scored by `shadow_arm` (the gateway's shadow traffic), each
// with its label: the request's own outcome on the primary binary metric, else its unit's (as
// for model quality). Parallel vectors, in store order.
struct ShadowPairs {
  std::string arm, shadow_arm;
  std::vector<double> scores, shadow_scores;
  std::vector<int> labels;
};

// Shadow traffic as the readers keep it (table `shadows`: requests also scored by a shadow
// arm), ordered by the served request's time, then its request key, whatever the store's order
// (PostgreSQL's heap has none, and a refresh appends the rows it reads): the summary and the
// paired evaluation are the same from a full read and from a follower's kept rows.
struct ShadowObservations {
  struct Row {
    int64_t ts_us;
    uint64_t request_key;        // common::Hash64(request id)
    double score, shadow_score;  // NaN: none
    int64_t latency_us, shadow_latency_us;
    int32_t status;
    uint32_t pair;  // index in `pairs`
    // Both scored, the shadow answered: paired with the request's label.
    bool comparable() const { return score == score && shadow_score == shadow_score && status < 300; }
  };
  std::vector<std::pair<std::string, std::string>> pairs;  // (served arm, shadow arm)
  std::vector<Row> rows;
  // Adds rows read from a store and restores the order (readers.cc).
  void Add(const std::vector<events::ShadowRow>& stored);
};

// The shadow traffic's summary (ReadShadowSummary's): nullopt when there is none.
std::optional<boost::json::object> ShadowSummaryOf(const ShadowObservations& shadow);

struct ArmInfo {
  std::string name;
  std::string model_version;
  double weight = 0;       // configured weight, for SRM; 0 with no config
  int64_t exposures = 0;   // served requests counted for this arm
  std::vector<VersionShare> versions{};  // every version that served it (an alias can move)
};

// Weights in force from `start_us` on (an admin change or a controller's ramp step), in the
// order of AnalysisInput::arms.
// One served request's labels exactly as the analysis attributes them (ReadEventStore with
// ReadTuning::request_labels), for `abgate export training-data`. Per metric: the request's own
// attributed outcomes when an outcome of that metric named it (binary: any positive;
// continuous: their sum), else its unit's attributed value — for the primary metric, the label
// the analysis scores the request's prediction against for model quality (AUC).
struct RequestLabels {
  uint64_t request_key = 0;     // common::Hash64(request_id), as in the event blocks
  int arm = 0;                  // index in AnalysisInput::arms (the assigned arm)
  int64_t unit_first_ts_us = 0; // the unit's first exposure (decides maturity, IsMaturing)
  bool multiple_arms = false;   // the unit was seen in two arms: the analysis leaves it out
  bool by_request = false;      // an outcome named this request (for at least one metric)
  absl::InlinedVector<double, 4> values;  // one per metric
};

// The analysis' maturity rule (Analyze): a unit first exposed less than `maturity_us` before
// `as_of_us` may still convert, so it is left out until its attribution window has passed.
inline bool IsMaturing(int64_t first_ts_us, int64_t as_of_us, int64_t maturity_us) {
  return maturity_us > 0 && as_of_us > 0 && first_ts_us > as_of_us - maturity_us;
}

struct WeightPeriod {
  int64_t start_us = 0;
  std::vector<double> weights;
};

struct AnalysisInput {
  std::string experiment;
  std::string unit = "user";  // "user" or "request"
  std::vector<ArmInfo> arms;
  int control = 0;
  std::vector<MetricSpec> metrics;  // metrics[primary] decides
  int primary = 0;
  // The distinct covariates the metrics name (MetricSpec::cuped_covariate), in the order of
  // their values in UnitObservation::values after the metrics'.
  std::vector<std::string> covariates;
  std::vector<UnitObservation> units;
  std::vector<ScoredPrediction> predictions;
  // Shadow traffic joined with the requests' labels, one entry per (served arm, shadow arm):
  // Analyze compares the shadow with the served model on the same requests (paired).
  std::vector<ShadowPairs> shadows;
  // The store readers: the summary of the same shadow rows (ShadowSummaryOf), so a caller does
  // not read them again (ReadShadowSummary).
  std::optional<ShadowSummary> shadow_summary;
  std::vector<RequestLabels> request_labels;  // only with ReadTuning::request_labels
  int64_t multiple_exposure_units = 0;  // seen in more than one arm; excluded from `units`
  // Outcomes read from a store: attributed to a unit, or kept but unattributed because they
  // came before the unit's first exposure, after the attribution window, or for no exposed unit.
  using OutcomeCounts = analysis::OutcomeCounts;
  std::optional<OutcomeCounts> outcomes;
  // Outcomes arrive after the exposure: a unit first exposed less than `maturity_us` before
  // `as_of_us` may still convert, and counting it as a non-conversion would penalise the arm
  // whose traffic is younger. Analyze leaves such units out (all metrics) and counts them.
  // The store readers set the maturity to the experiment's attribution window. 0: no wait.
  int64_t as_of_us = 0;
  int64_t maturity_us = 0;
  int64_t maturing_units = 0;  // counted by a reader that already left units out
  std::string window;      // what the data covers, for people ("all", "since …")
  std::string srm_period;  // which weights the SRM check used, when they changed over time
  bool weights_known = false;
  // When the weights changed over the data's time span: SRM is checked in each period on the
  // units first exposed in it (a unit is assigned by the weights in force at its first
  // exposure), and the report says so. Empty or one entry: the arms' weights throughout.
  std::vector<WeightPeriod> weight_periods;
  // A bandit experiment: the report gets its bandit section (IPW rates, probability best) and
  // no fixed-horizon comparisons, which do not apply to adaptively assigned traffic.
  struct Bandit {
    double floor = 0;
  };
  std::optional<Bandit> bandit;
  std::optional<Conclusion> conclusion;  // copied to the report (Configure sets it)
  // Instead of `units` and `predictions` (then empty): their statistics, kept up to date by an
  // EventStoreFollower. `state_arms[a]` is the state's index of arms[a] (-1: no units yet).
  // Analyze moves the state's maturity cutoff (as_of_us - maturity_us).
  std::shared_ptr<AnalysisState> state;
  std::vector<int> state_arms;
  double alpha = 0.05;
  double sequential_tuning_n = 5000;
  std::string adjustment = "holm";  // of the secondary family: "holm", "bh" or "none"
};

// Computes the report (ToJson gives DESIGN.md's `abgate analyze --format json`), its decision
// made by `Decide` without serving counters. InvalidArgument for inconsistent input;
// per-metric shortages (too little data) become explicit "insufficient data" entries, never NaN.
absl::StatusOr<Report> Analyze(const AnalysisInput& input);

// A bandit's evidence per arm (in the order of input.arms): requests whose outcomes can be
// complete (the maturity rule of Analyze) as trials, and those with a positive value of the
// primary metric as successes. What the gateway's Thompson sampling and the report's
// probability-best both use. From `input.units`, or from a follower's `input.state` (whose
// maturity cutoff it moves, as Analyze does).
std::vector<stats::BanditArm> BanditEvidence(const AnalysisInput& input);

// Renderers of the report, for people: numbers rounded to at most 4 significant digits.
std::string RenderText(const Report& report);
std::string RenderHtml(const Report& report);
std::string ShadowLine(const ShadowSummary& shadow);  // one line for people
std::string ShadowEvaluationLine(const ShadowEvaluation& evaluation);  // one line for people

// Reads the seed's ab_results.csv (`user_id, model_version, y_true, y_pred`, header row,
// columns in any order). Arms are model versions; control is `control_version` or else the
// lowest version (the production model is the older one). The first row of a user decides
// the arm; users seen under two versions are counted and excluded. Metric `booked` (binary,
// per user: any y_true = 1); model quality per row from y_pred against y_true.
absl::StatusOr<AnalysisInput> ReadResultsCsv(const std::string& path, const std::string& control_version);

// How ReadEventStore divides its work. The defaults suit any store; tests shrink them to run
// the parallel paths on small data.
struct ReadTuning {
  int workers = 0;             // threads; 0: one per core (at most 8)
  // Per scan task: rowids (SQLite rows or blocks), heap pages or block ids (PostgreSQL);
  // 0: from the tables' sizes.
  int64_t rows_per_chunk = 0;
  bool use_blocks = true;  // read the event blocks when they hold every row, else the rows
  bool request_labels = false;  // also fill AnalysisInput::request_labels (one per exposure)
  // With request_labels: only for the requests it accepts (their request keys), so an export of
  // a sampled 1% holds 1% of the exposures' labels; unset: every exposure. Called from the
  // reader's workers concurrently.
  std::function<bool(uint64_t request_key)> label_requests{};
};

// Reads one experiment from an event store (events::EventReader): exposures
// (in-experiment only), and outcomes when the store has any, attributed by request_id, else
// by unit_id, when they fall in [first exposure, first exposure + window] (no window: 0).
// Binary metrics are 1 for a unit with any positive outcome; continuous metrics sum per unit.
// A metric's CUPED covariate is the sum of that outcome metric's values recorded before the
// unit's first exposure (read even before `since_us`); AnalysisInput::covariates lists them.
// `unit` is "user" (first exposure decides the arm) or "request". Arms in name order; units
// and predictions in no particular order. Parallel inside; see event_store_reader.cc.
// Every reader below also comes in a form that opens the store named by a URI (sqlite:PATH or
// postgresql://…, events::OpenEventReader) for the one call.
absl::StatusOr<AnalysisInput> ReadEventStore(events::EventReader& reader, const std::string& experiment,
                                             const std::string& unit, std::vector<MetricSpec> metrics,
                                             int64_t attribution_window_us = 0, int64_t since_us = 0,
                                             ReadTuning tuning = {});
absl::StatusOr<AnalysisInput> ReadEventStore(const std::string& store_uri, const std::string& experiment,
                                             const std::string& unit, std::vector<MetricSpec> metrics,
                                             int64_t attribution_window_us = 0, int64_t since_us = 0,
                                             ReadTuning tuning = {});

// The distinct covariates `metrics` name, in first-named order (AnalysisInput::covariates).
std::vector<std::string> CovariatesOf(const std::vector<MetricSpec>& metrics);

// What ReadWeightHistory read last (see its form with a cache).
struct WeightHistoryCache {
  std::string config_json;  // the config the periods were read for
  int64_t rows = -1;        // the history's rows then (-1: none read)
  std::vector<WeightPeriod> periods;
};

// ReadEventStore for a caller that reads the same experiment again and again (a dashboard's
// results): it keeps the events it read, so each Read scans only the events stored since the
// previous one and gives exactly what ReadEventStore would (the same rows in the same order, so
// the same report to the last bit). Stores that cannot resume a scan (PostgreSQL; a SQLite
// store that switched between rows and event blocks) are read whole, as ReadEventStore does.
// Memory: about 40 bytes per exposure and outcome of the experiment. Thread-compatible: one
// Read at a time.
class EventStoreFollower {
 public:
  EventStoreFollower(std::string experiment, std::string unit, std::vector<MetricSpec> metrics,
                     int64_t attribution_window_us = 0, int64_t since_us = 0);
  ~EventStoreFollower();
  EventStoreFollower(const EventStoreFollower&) = delete;
  EventStoreFollower& operator=(const EventStoreFollower&) = delete;

  // As ReadEventStore(reader, experiment, unit, metrics, window, since, tuning). Always pass the
  // same store. After an error the next Read reads everything again.
  absl::StatusOr<AnalysisInput> Read(events::EventReader& reader, ReadTuning tuning = {});
  // Whether it reads with these parameters (else make a new one).
  bool Follows(const std::string& unit, const std::vector<MetricSpec>& metrics, int64_t attribution_window_us,
               int64_t since_us) const;
  int64_t kept_events() const;
  // The memory it keeps, counted from its containers' capacities: per exposure its record and
  // its request's index entry, per outcome its record, per unit its record, index entry and its
  // share of the statistics (AnalysisState::memory_bytes). ~260 bytes per exposure of a new
  // unit, ~60 per exposure of a known unit, 32 per outcome (measured by RSS:
  // bench/results_refresh_bench prints both).
  int64_t kept_bytes() const;
  bool last_read_incremental() const;  // the last Read scanned only new events
  bool can_resume() const;  // the store lets the next Read scan only new events (else keeping it saves nothing)
  // The experiment's weight history as last read (ReadConfiguredExperiment with this follower).
  WeightHistoryCache& weight_history() { return weight_history_; }

  struct State;

 private:
  const std::string experiment_;
  const std::string unit_;
  const std::vector<MetricSpec> metrics_;
  const int64_t window_us_;
  const int64_t since_us_;
  std::unique_ptr<State> state_;
  WeightHistoryCache weight_history_;
};

// ReadConfiguredExperiment (below) through a follower made for `experiment` (its name, unit,
// metrics, attribution window and `since_us`).
absl::StatusOr<AnalysisInput> ReadConfiguredExperiment(events::EventReader& reader, EventStoreFollower& follower,
                                                       const config::ExperimentConfig& experiment);

// The metrics of an experiment's config, primary first (a binary `booked` when it declares none).
// A bandit's metric is its primary metric.
std::vector<MetricSpec> MetricsOf(const config::ExperimentConfig& experiment);
// The analysis unit of an experiment: "request" where each request is assigned afresh
// (request_random, bandit), else "user".
std::string UnitOf(const config::ExperimentConfig& experiment);

// `since_us` > 0 keeps only exposures and outcomes at or after it (one phase of a ramp: the
// controller analyses each rollout step on its own, so the split it checks is that step's).
// ReadEventStore for a configured experiment, with the arms laid out as configured: config
// order, configured weights for SRM (unless a ramp changed them over time), control from the
// config. InvalidArgument when the store has exposures for an arm the config does not list.
absl::StatusOr<AnalysisInput> ReadConfiguredExperiment(events::EventReader& reader,
                                                       const config::ExperimentConfig& experiment,
                                                       const std::string& unit, std::vector<MetricSpec> metrics,
                                                       int64_t since_us = 0);
absl::StatusOr<AnalysisInput> ReadConfiguredExperiment(const std::string& store_uri,
                                                       const config::ExperimentConfig& experiment,
                                                       const std::string& unit, std::vector<MetricSpec> metrics,
                                                       int64_t since_us = 0);

// The experiment as last stored through the admin API (table experiment_configs), or nullopt
// when the store has no stored config for it (a YAML-only experiment).
absl::StatusOr<std::optional<config::ExperimentConfig>> ReadStoredExperiment(events::EventReader& reader,
                                                                             const std::string& experiment);
absl::StatusOr<std::optional<config::ExperimentConfig>> ReadStoredExperiment(const std::string& store_uri,
                                                                             const std::string& experiment);

// The weights of `experiment`'s arms over time, from its audit trail (every admin change's
// `after`), starting with `experiment`'s own weights when the trail begins later. Consecutive
// equal weights are one period.
absl::StatusOr<std::vector<WeightPeriod>> ReadWeightHistory(events::EventReader& reader,
                                                            const config::ExperimentConfig& experiment);
// The same for a caller that reads it again and again (a dashboard's results, a bandit's
// updates): read again only when the history's rows (EventReader::CountHistoryRows) or the
// config changed since `cache` was filled; else the periods kept. Not thread-safe.
absl::StatusOr<std::vector<WeightPeriod>> ReadWeightHistory(events::EventReader& reader,
                                                            const config::ExperimentConfig& experiment,
                                                            WeightHistoryCache& cache);
absl::StatusOr<std::vector<WeightPeriod>> ReadWeightHistory(const std::string& store_uri,
                                                            const config::ExperimentConfig& experiment);

// The metrics the store has outcomes for in `experiment`, by name: binary when every value is
// 0 or 1, else continuous.
absl::StatusOr<std::vector<MetricSpec>> ReadStoredMetrics(events::EventReader& reader, const std::string& experiment);
absl::StatusOr<std::vector<MetricSpec>> ReadStoredMetrics(const std::string& store_uri, const std::string& experiment);

// Shadow traffic of `experiment` (table `shadows`), from `since_us` on: requests mirrored,
// shadow failures, prediction disagreement (scores on different sides of 0.5), score
// correlation, and latency of the served arm vs the shadow on the same requests. nullopt when
// there was none.
absl::StatusOr<std::optional<boost::json::object>> ReadShadowSummary(events::EventReader& reader,
                                                                    const std::string& experiment, int64_t since_us = 0);
absl::StatusOr<std::optional<boost::json::object>> ReadShadowSummary(const std::string& store_uri,
                                                                    const std::string& experiment, int64_t since_us = 0);

}  // namespace abgate::analysis
