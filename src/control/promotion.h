// Promotion and rollback, applied to both sides: the registry (stage Production with
// archive_existing_versions, alias `champion` moved to the winner, `challenger` removed, losers
// archived, evidence tags on the versions) and the gateway (all traffic to the winner, the
// experiment stopped, the evidence in the audit log). Works against the embedded registry and
// a real MLflow 2.x server alike (only the REST calls of MLFLOW.md §4). Blocking.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "absl/status/statusor.h"
#include "analysis/decision.h"
#include "analysis/report.h"
#include "config/gateway_config.h"
#include "control/gateway_admin.h"
#include "registry/mlflow_client.h"

namespace abgate::control {

struct ArmVersion {
  std::string arm;
  std::string version;
};

struct Decision {
  std::string experiment;
  std::string model;
  ArmVersion winner;
  std::vector<ArmVersion> losers;
  boost::json::object evidence;
  std::string candidate_tag = "ab_test_candidate";  // removed from every version involved
};

// The gateway change is then awaited on every live gateway sharing the store (and audited as
// fleet_applied); DeadlineExceeded when some gateway has not applied it within `fleet_timeout`.
// `applied`, when given, receives the fleet as it was once the change was in force everywhere.
absl::Status ApplyPromotion(registry::MlflowClient& registry, GatewayAdmin& gateway, const Decision& d,
                            FleetState* applied = nullptr,
                            std::chrono::milliseconds fleet_timeout = std::chrono::seconds(30));

// All traffic back to the control; the candidate keeps its stage and is tagged with the reason.
absl::Status ApplyRollback(registry::MlflowClient& registry, GatewayAdmin& gateway, const std::string& experiment,
                           const std::string& model, const ArmVersion& candidate, const std::string& outcome,
                           const std::string& reason, const boost::json::object& evidence,
                           const std::string& candidate_tag = "ab_test_candidate");

// The winner `promote --winner auto` takes: Decide's on the report and the serving counters
// under the experiment's policy, or FailedPrecondition with the decision's reason. The same
// call the controller's final step makes, so the two never disagree on the same data.
absl::StatusOr<std::string> AutoWinner(const analysis::Report& report, const config::ExperimentConfig& experiment,
                                       const std::map<std::string, analysis::ServingHealth>& health);

// `abgate promote`: reads the experiment and its results from the gateway and promotes
// `winner` ("auto": the analysis must call a winner under the sequential test, with no SRM and
// the guardrails passed; otherwise FailedPrecondition says why). Returns the decision applied.
absl::StatusOr<Decision> PromoteExperiment(registry::MlflowClient& registry, GatewayAdmin& gateway,
                                           const std::string& experiment, const std::string& winner,
                                           FleetState* applied = nullptr);

// The numbers of one look on one arm's MLflow run: the arm's units, exposures and metric means,
// and, for the treatment the decision rests on, the decision's own p-values and lift (the same
// values as the report, the tags and the decision line).
void AppendRunMetrics(const analysis::Report& report, const analysis::Decision& decision, const std::string& arm,
                      int64_t ts_ms, int64_t step, std::vector<registry::Metric>* metrics);

// Clears the `ab_test.*` tags an earlier test left on `version` (called when a new test of it
// starts, so no tag tells an older test's numbers as if they were this one's).
absl::Status ClearTestTags(registry::MlflowClient& registry, const std::string& model, const std::string& version);

// Evidence as registry tags (ab_test.*), string values.
std::vector<std::pair<std::string, std::string>> EvidenceTags(const std::string& experiment,
                                                              const boost::json::object& evidence);

}  // namespace abgate::control
