// Controller: `abgate controller`, the automation loop. It polls the registry for versions of
// the configured models tagged `ab_test_candidate=true`, starts an experiment champion vs
// candidate in the gateway (admin API) with the model's rollout plan, evaluates it on every
// tick (rollout.h), advances the ramp, and promotes or rolls back (promotion.h), clearing the
// candidate tag and recording the outcome. Tracking: one MLflow run per experiment arm (params:
// arm, model name and version, routing mode; metrics per look; tag ab_test=<experiment>).
//
// Restart-safe: every rollout's state (step, step start, baselines, run ids, outcome) lives in
// a SQLite file and is written before the change it describes is acted on, so a controller
// restarted mid-experiment carries on; a gateway that lost the experiment gets it back at the
// current step. Tick is called from one thread at a time.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/mutex.h"
#include "common/clock.h"
#include "config/gateway_config.h"
#include "control/gateway_admin.h"
#include "registry/mlflow_client.h"

namespace abgate::sqlite {
class Database;
}  // namespace abgate::sqlite

namespace abgate::control {

// The feedback loop's work (controller.retrain), done by a function the binary installs
// (set_retrainer): export what the gateway logged since `since_us`, and when at least
// `config.min_new_labels` rows are labelled, train on them, register the version tagged as a
// candidate and say so. FailedPrecondition means not enough new labelled data (yet). The
// controller itself links no event-store reader or trainer.
struct RetrainRequest {
  config::RetrainConfig config;
  std::string experiment;           // whose logs
  std::string store;                // events.store
  std::string registry_uri;
  std::string tracking_experiment;  // MLflow experiment of the training run
  std::string candidate_tag;        // tagged <candidate_tag>=true on the new version
  std::string label;                // resolved: config.label or the model's primary metric
  int64_t since_us = 0;             // data after the previous retrain's
};
struct RetrainResult {
  std::string version;
  std::string run_id;
  std::string export_file;
  int64_t rows = 0;
  int64_t until_us = 0;  // the last exposure trained on: the next retrain's data starts after it
  std::string summary;   // one line for people
};
using Retrainer = std::function<absl::StatusOr<RetrainResult>(const RetrainRequest&)>;

// One row of the retrain history (state table `retrains`).
struct RetrainRecord {
  std::string model;
  int64_t ts_ms = 0;
  std::string experiment;
  int64_t since_us = 0, until_us = 0, rows = 0;
  std::string version, run_id, export_file;
  std::string status;  // registered | waiting (too few new labels) | failed
  std::string message;
};

struct Rollout {
  std::string experiment;
  std::string model;
  std::string champion_version;
  std::string candidate_version;
  std::string status;  // running | promoted | rolled_back | inconclusive
  int step = 0;
  int64_t step_started_ms = 0;
  int64_t started_ms = 0;
  int64_t looks = 0;
  std::string reason;
  std::string baseline_json;  // health per arm when the experiment started
  std::string runs_json;      // arm → MLflow run id
  std::string report_json;    // the analysis of the last look (the evidence of the decision)
};

class Controller {
 public:
  // `config.registry.uri` and `config.controller` are required.
  static absl::StatusOr<std::unique_ptr<Controller>> Create(const config::GatewayConfig& config,
                                                            const std::string& admin_token, const common::Clock& clock);
  ~Controller();

  // One pass: evaluate every running rollout, then start rollouts for new candidates.
  absl::Status Tick();
  // Ticks every poll interval until `stop` is set (checked every 50 ms).
  void Run(const std::atomic<bool>& stop);

  std::vector<Rollout> Rollouts() const;
  // Progress lines ("hyatt_booking_model: v8 advanced to 50%"), for the CLI and the demo.
  void set_on_event(std::function<void(const std::string&)> f) { on_event_ = std::move(f); }
  // Installs the feedback loop's trainer (controller.retrain does nothing without one).
  void set_retrainer(Retrainer f) { retrainer_ = std::move(f); }
  std::vector<RetrainRecord> Retrains() const;

 private:
  Controller(config::ControllerConfig config, std::unique_ptr<registry::MlflowClient> registry,
             std::unique_ptr<GatewayAdmin> gateway, std::unique_ptr<sqlite::Database> db, const common::Clock& clock);
  absl::Status Evaluate(Rollout& r, const config::ControlledModelConfig& model);
  absl::Status StartCandidates(const config::ControlledModelConfig& model);
  absl::Status EnsureExperiment(const Rollout& r, const config::ControlledModelConfig& model);
  absl::Status Save(const Rollout& r);
  absl::Status MaybeRetrain(const config::RetrainConfig& rc);
  absl::Status SaveRetrain(const RetrainRecord& r);
  void Emit(const std::string& line);
  int64_t NowMs() const { return clock_.NowUs() / 1000; }

  config::ControllerConfig config_;
  std::unique_ptr<registry::MlflowClient> registry_;
  std::unique_ptr<GatewayAdmin> gateway_;
  // The state database is one SQLite connection (not thread-safe); Run() writes it on the loop
  // thread while Rollouts()/Retrains() read it from others (the demo, the CLI).
  mutable common::Mutex db_mu_;
  std::unique_ptr<sqlite::Database> db_ ABSL_GUARDED_BY(db_mu_);  // rollout state
  const common::Clock& clock_;
  std::function<void(const std::string&)> on_event_;
  Retrainer retrainer_;
  std::string store_uri_;     // events.store, for the retrainer
  std::string registry_uri_;
  bool warned_no_retrainer_ = false;
};

// The experiment a controller creates for `candidate` vs `champion` (exposed for tests).
boost::json::object ExperimentFor(const config::ControlledModelConfig& model, const std::string& experiment,
                                  const std::string& champion, const std::string& candidate,
                                  const config::RolloutStepConfig& step);

}  // namespace abgate::control
