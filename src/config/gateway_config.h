// Gateway configuration: plain structs with defaults, parsed from the YAML file (through JSON,
// so the admin API's JSON experiments share one parser) and validated before anything listens.
// Keys are the contract in DESIGN.md; unknown keys are errors. Structs are values: copy freely.
#pragma once

#include <cstdint>
#include <map>
#include <optional>

#include <boost/json/object.hpp>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "absl/status/statusor.h"

namespace abgate::config {

// kBandit: each request drawn at random with weights a Thompson-sampling updater recomputes
// every `bandit.update_interval` from the attributed outcomes (see BanditConfig).
enum class RoutingMode { kRequestRandom, kUserHash, kSticky, kBandit };
std::string_view RoutingModeName(RoutingMode mode);
absl::StatusOr<RoutingMode> ParseRoutingMode(std::string_view name);

enum class ExperimentState { kRunning, kPaused, kStopped };
std::string_view ExperimentStateName(ExperimentState state);

enum class MetricType { kBinary, kContinuous, kCount };

struct HostPort {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
};
absl::StatusOr<HostPort> ParseHostPort(std::string_view text);

struct UpstreamUrl {
  bool tls = false;  // https
  std::string host;
  uint16_t port = 80;
  std::string target = "/invocations";  // path and query sent in the request line
};
// http:// or https:// (a model server behind a TLS ingress, as KServe and Seldon expose them).
absl::StatusOr<UpstreamUrl> ParseUpstreamUrl(std::string_view url);

struct ArmConfig {
  std::string name;
  std::string version;   // registry version, e.g. "7"
  double weight = 0;     // relative; normalised over the arms
  std::string upstream;  // http://host:port/invocations; empty = in-process model
  std::string model;     // models:/name/7 or a folder, for in-process arms
  std::string alias;     // registry alias such as "champion"
};

struct RampStepConfig {
  int64_t after_us = 0;
  std::vector<double> weights;
};

struct MetricConfig {
  std::string name;
  MetricType type = MetricType::kBinary;
  bool primary = false;
  // `cuped: {covariate: NAME}`: the analysis adjusts this metric by CUPED with, per unit, the
  // sum of NAME's outcomes recorded before the unit's first exposure. Empty: no adjustment.
  std::string cuped_covariate;
};

struct GuardrailConfig {
  double max_error_rate = 0;       // 0 = not checked
  double max_p99_latency_ms = 0;   // 0 = not checked
};

// A slice [low, high) of a GrowthBook namespace (mutual exclusion between experiments).
struct NamespaceConfig {
  std::string name;
  double low = 0;
  double high = 1;
};

// The global holdout: `percent` of units, chosen by a hash under `seed`, kept out of every
// experiment (served by its control).
struct HoldoutConfig {
  double percent = 0;
  std::string seed = "abgate-holdout";
};

// routing_mode: bandit. Thompson sampling on the binary `metric` (one of the experiment's
// metrics), every arm kept at >= `floor` of the traffic (floor × arms <= 1), the weights
// recomputed every `update_interval` (1 s to 24 h).
struct BanditConfig {
  std::string metric;
  double floor = 0.05;
  int64_t update_interval_us = 60'000'000;
};
inline constexpr int64_t kMinBanditIntervalUs = 1'000'000;
inline constexpr int64_t kMaxBanditIntervalUs = 86'400'000'000;

// How a stopped experiment ended (POST …/promote or …/rollback). The winner serves everyone and
// becomes `control`; `tested_control` keeps the control the experiment ran with, so an analysis
// afterwards still compares the arms as they were tested (and shows this conclusion).
struct ConclusionConfig {
  std::string action;          // "promote" | "rollback"
  std::string winner;          // the arm that serves now
  std::string tested_control;  // the control while the experiment ran
  int64_t at_us = 0;
  std::string reason;          // the caller's evidence.reason, when it gave one
};

struct ExperimentConfig {
  std::string name;
  std::string model;  // registry model name
  bool is_default = false;
  RoutingMode routing_mode = RoutingMode::kUserHash;
  std::string unit_field = "user_id";  // body field holding the unit id
  std::string unit_header;             // header holding it when the body has none
  std::string seed;                    // hash seed; defaults to name
  double coverage = 1.0;
  std::string control;                 // arm name; defaults to the first arm
  std::vector<ArmConfig> arms;
  std::vector<RampStepConfig> ramp;
  bool fallback_to_control = true;
  std::vector<MetricConfig> metrics;
  GuardrailConfig guardrails;
  std::optional<int64_t> start_us;     // ramp clock origin; default: first seen by the store
  ExperimentState state = ExperimentState::kRunning;
  int64_t bucket_version = 0;  // bumping it re-randomises every unit not overridden
  int64_t attribution_window_us = 0;  // outcomes later than this after the unit's first exposure
                                      // are kept but unattributed; 0 = no limit
  double payload_sample_rate = 0;     // share of units whose payloads are stored (hash-keyed)
  int64_t payload_max_bytes = 16384;  // per stored payload
  // Shadow traffic: this share of requests served by another arm is also sent to `shadow_arm`
  // asynchronously; its reply is discarded and compared (table `shadows`).
  std::string shadow_arm;
  double shadow_percent = 0;
  // Only units whose namespace hash falls in the range enter (GrowthBook's inNamespace).
  std::optional<NamespaceConfig> namespace_range;
  std::optional<BanditConfig> bandit;  // with routing_mode: bandit (and only then)
  std::optional<ConclusionConfig> conclusion;  // set by promote/rollback (state stopped)

  int ControlIndex() const;
  // Where an arm without `upstream` loads its model from: the arm's `model`, else
  // models:/<experiment model>@<alias>, else models:/<experiment model>/<version>.
  std::string ArmModelUri(const ArmConfig& arm) const;
  // The hash seed in force: `seed`, or `seed:N` after N bucket-version bumps.
  std::string HashSeed() const;  // index of `control` in arms
};

struct ServerConfig {
  HostPort listen{"127.0.0.1", 8080};
  HostPort admin_listen{"127.0.0.1", 8081};
  std::string admin_token_env = "ABGATE_ADMIN_TOKEN";
  int threads = 2;
  int64_t max_body_bytes = 1 << 20;
  int64_t max_header_bytes = 16 << 10;
  int64_t read_timeout_us = 10'000'000;   // a started request must arrive within this
  int64_t idle_timeout_us = 60'000'000;   // keep-alive connection with no request
  int64_t drain_timeout_us = 10'000'000;  // SIGTERM: finish in-flight requests within this
  // Admin API reads (GET) need the token too, unless opened: every read (`public_reads`), or
  // the ones the dashboard makes (`dashboard_public_reads`: experiments, results, health, audit).
  bool public_reads = false;
  bool dashboard_public_reads = false;
  int analysis_threads = 1;  // results computed at once, off the admin thread
  // Open connections per listener; at the cap the oldest idle ones are closed to make room.
  // 0 = http::DefaultMaxConnections() (half the open-file limit, at most 10000).
  int64_t max_connections = 0;
};

// Outlier ejection of an arm's upstream, after Envoy's outlier detection: this many failures
// in a row (connect errors, timeouts, 5xx, unreadable replies) eject the arm for
// base_ejection_time × (times ejected recently), at most max_ejection_time. While ejected its
// requests go to control at once (fallback_to_control); control itself is never ejected, and
// at most max_ejection_percent of an experiment's arms (at least one) are out at a time.
struct OutlierDetectionConfig {
  int consecutive_failures = 5;  // 0 = no ejection
  int64_t base_ejection_time_us = 30'000'000;
  int64_t max_ejection_time_us = 300'000'000;
  double max_ejection_percent = 50;
};

struct UpstreamConfig {
  int64_t connect_timeout_us = 1'000'000;
  int64_t request_timeout_us = 5'000'000;
  // Per I/O thread and upstream: at least the requests one loop has in flight to one upstream at
  // peak, or each burst above it closes connections (TIME_WAIT) and opens new ones.
  int max_idle_per_host = 1024;
  // https upstreams: CAs to trust besides the system's (PEM), and whether to check at all.
  std::string tls_ca_file;
  bool tls_verify = true;
  OutlierDetectionConfig outlier_detection;
};

struct OutcomesConfig {
  // POST /outcomes needs `Authorization: Bearer $<token_env>` when set; empty = open.
  std::string token_env;
  // Outcomes whose `ts` is later than now plus this are refused (TS_IN_FUTURE).
  int64_t max_future_us = 300'000'000;
};

struct EventsConfig {
  std::string store = "sqlite:abgate-events.db";
  int64_t flush_us = 50'000;
  int64_t queue_capacity = 1 << 20;  // events waiting for the writer; beyond this, dropped+counted
  int64_t max_outcome_batch = 10000; // lines per POST /outcomes
};

struct RegistryConfig {
  std::string uri;
  std::string cache_dir = "abgate-model-cache";  // where in-process arms' models are downloaded
};

// One step of a progressive rollout: the candidate's share of traffic, held at least
// `min_duration_us` and until `min_units` units have been seen in the experiment.
struct RolloutStepConfig {
  std::string name;
  double percent = 0;          // 0 only for a shadow step
  double shadow_percent = 0;   // share of control's requests mirrored to the candidate
  int64_t min_duration_us = 0;
  int64_t min_units = 0;
};

// A registry model the controller watches for candidates.
struct ControlledModelConfig {
  std::string name;
  std::string candidate_tag = "ab_test_candidate";  // a version tagged <tag>=true is a candidate
  // Experiment fields for every experiment started for this model (routing_mode, unit, metrics,
  // guardrails, fallback_to_control, attribution_window, ...); name, model, arms and control
  // are filled in by the controller.
  boost::json::object experiment;
  ExperimentConfig parsed;  // `experiment` parsed and validated (guardrails, metrics)
  std::vector<RolloutStepConfig> plan;
  int64_t max_duration_us = 3'600'000'000;  // then: inconclusive, the champion stays
  // `shadow_gate`: at the end of a shadow step, a candidate significantly worse than the champion
  // on the same requests (paired AUC or log loss, the report's shadow_evaluation) is rolled
  // back instead of advancing to live traffic. true by default.
  bool shadow_gate = true;
  std::map<std::string, std::string> upstreams;  // version → upstream URL; other versions in-process
};

// controller.retrain: the feedback loop for one controlled model. When no test of `model` is
// running, at most once per `every`, the controller exports what the gateway logged since the
// last retrain (sampled payloads + attributed labels), and when that holds at least
// `min_new_labels` labelled rows it trains a new version on them, registers it and tags it as a
// candidate, which the controller then tests against the champion as usual.
struct RetrainConfig {
  std::string model;              // one of controller.models
  std::string experiment;         // whose logs; empty: the controller's latest test of `model`
  int64_t every_us = 86'400'000'000LL;
  int64_t min_new_labels = 1000;  // exported rows (sampled, labelled, past the attribution window)
  std::string label;              // the label column; empty: the model's primary metric
  bool top_ranked_only = false;   // only rows the served model ranked first
  bool inverse_probability_weights = true;
  std::string data_dir = "abgate-retrain";  // where the exports are kept (the run names the file)
  int rounds = 60;
  std::vector<std::pair<std::string, std::string>> params;  // XGBoost parameters
};

struct ControllerConfig {
  std::string gateway_admin = "http://127.0.0.1:8081";  // the gateway's admin API
  int64_t poll_interval_us = 5'000'000;
  std::string state = "sqlite:abgate-controller.db";
  std::string tracking_experiment = "abgate-ab-tests";  // MLflow experiment: one run per arm
  double alpha = 0.05;
  std::vector<ControlledModelConfig> models;
  std::vector<RetrainConfig> retrain;  // `retrain:` one mapping or a list
};

struct GatewayConfig {
  ServerConfig server;
  RegistryConfig registry;
  EventsConfig events;
  UpstreamConfig upstream;
  OutcomesConfig outcomes;
  std::vector<ExperimentConfig> experiments;
  std::optional<ControllerConfig> controller;
  HoldoutConfig holdout;

  // The experiment served at POST /predict and /invocations, or null when none is default.
  const ExperimentConfig* DefaultExperiment() const;
};

// Reads and validates a YAML config file. Errors name the file and the key path.
absl::StatusOr<GatewayConfig> LoadGatewayConfig(const std::string& path);
absl::StatusOr<GatewayConfig> ParseGatewayConfig(std::string_view yaml_text);
absl::StatusOr<ControllerConfig> ParseControllerConfig(const boost::json::value& v);
absl::StatusOr<GatewayConfig> ParseGatewayConfigJson(const boost::json::value& root);

// One experiment from JSON (admin API) or a config subtree; validated on its own.
absl::StatusOr<ExperimentConfig> ParseExperimentConfig(const boost::json::value& v,
                                                       const std::string& path = "experiment");
absl::Status ValidateExperiment(const ExperimentConfig& e);
// The bandit rules (part of ValidateExperiment): `bandit` present exactly with routing_mode
// bandit, at least two arms, `metric` one of the experiment's binary metrics, floor × arms <= 1,
// update_interval in [1s, 24h], no ramp. InvalidArgument naming the key otherwise.
absl::Status ValidateBandit(const ExperimentConfig& e);
// Running experiments in one namespace must have disjoint ranges (else they could share a
// unit): FailedPrecondition naming both experiments otherwise.
absl::Status ValidateNamespaces(const std::vector<const ExperimentConfig*>& experiments);
// The experiment in the same JSON shape it is parsed from (round-trips).
boost::json::value ExperimentToJson(const ExperimentConfig& e);

}  // namespace abgate::config
