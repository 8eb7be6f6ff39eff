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
#include "common/clock.h"
#include "config/gateway_config.h"
#include "control/gateway_admin.h"
#include "registry/mlflow_client.h"

namespace abgate::sqlite {
class Database;
}  // namespace abgate::sqlite

namespace abgate::control {

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

 private:
  Controller(config::ControllerConfig config, std::unique_ptr<registry::MlflowClient> registry,
             std::unique_ptr<GatewayAdmin> gateway, std::unique_ptr<sqlite::Database> db, const common::Clock& clock);
  absl::Status Evaluate(Rollout& r, const config::ControlledModelConfig& model);
  absl::Status StartCandidates(const config::ControlledModelConfig& model);
  absl::Status EnsureExperiment(const Rollout& r, const config::ControlledModelConfig& model);
  absl::Status Save(const Rollout& r);
  void Emit(const std::string& line);
  int64_t NowMs() const { return clock_.NowUs() / 1000; }

  config::ControllerConfig config_;
  std::unique_ptr<registry::MlflowClient> registry_;
  std::unique_ptr<GatewayAdmin> gateway_;
  std::unique_ptr<sqlite::Database> db_;  // rollout state
  const common::Clock& clock_;
  std::function<void(const std::string&)> on_event_;
};

// The experiment a controller creates for `candidate` vs `champion` (exposed for tests).
boost::json::object ExperimentFor(const config::ControlledModelConfig& model, const std::string& experiment,
                                  const std::string& champion, const std::string& candidate,
                                  const config::RolloutStepConfig& step);

}  // namespace abgate::control
