#include "control/promotion.h"

#include <chrono>
#include <ctime>

#include <boost/json.hpp>

#include "analysis/decision.h"
#include "common/human.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "config/json_format.h"
#include "control/rollout.h"

namespace abgate::control {
namespace json = boost::json;

namespace {

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The winner of a decision, or FailedPrecondition with its action and reason.
absl::StatusOr<std::string> WinnerOf(const analysis::Decision& decision, const std::string& experiment) {
  if (decision.action != "promote" || !decision.winner) {
    return absl::FailedPreconditionError(
        StrCat("not promoting ", experiment, ": ", decision.action, " -- ", decision.reason));
  }
  return *decision.winner;
}

std::string Text(const json::value& v) { return v.is_string() ? std::string(v.as_string()) : config::ToJson(v); }

}  // namespace

std::vector<std::pair<std::string, std::string>> EvidenceTags(const std::string& experiment,
                                                              const json::object& evidence) {
  std::vector<std::pair<std::string, std::string>> tags = {{"ab_test.experiment", experiment},
                                                           {"ab_test.decided_at", HumanUtc(NowUs())}};
  for (const auto& [k, v] : evidence) {
    tags.emplace_back(StrCat("ab_test.", std::string_view(k.data(), k.size())), Text(v).substr(0, 5000));
  }
  return tags;
}

void AppendRunMetrics(const analysis::Report& report, const analysis::Decision& decision, const std::string& arm,
                      int64_t ts_ms, int64_t step, std::vector<registry::Metric>* metrics) {
  const analysis::ArmReport* a = report.Arm(arm);
  if (!a) return;
  for (const auto& m : a->metrics) {
    if (m.mean) metrics->push_back({m.name, *m.mean, ts_ms, step});
  }
  if (a->quality) {
    if (a->quality->auc) metrics->push_back({"auc", *a->quality->auc, ts_ms, step});
    if (a->quality->log_loss) metrics->push_back({"log_loss", *a->quality->log_loss, ts_ms, step});
    if (a->quality->calibration_error) metrics->push_back({"calibration_error", *a->quality->calibration_error, ts_ms, step});
  }
  // The primary comparison of this treatment, as the decision reads it.
  const analysis::ComparisonReport* c = report.Comparison(decision.metric, arm);
  if (!c || !c->insufficient_data.empty()) return;
  metrics->push_back({"p_value", c->p_value, ts_ms, step});
  if (c->sequential_p_value) metrics->push_back({"sequential_p_value", *c->sequential_p_value, ts_ms, step});
  if (c->sequential_p_value_adjusted) {
    metrics->push_back({"sequential_p_value_adjusted", *c->sequential_p_value_adjusted, ts_ms, step});
  }
  if (c->lift) metrics->push_back({"lift", *c->lift, ts_ms, step});
  metrics->push_back({"diff", c->diff, ts_ms, step});
}

absl::Status ClearTestTags(registry::MlflowClient& reg, const std::string& model, const std::string& version) {
  ABGATE_ASSIGN_OR_RETURN(auto mv, reg.GetModelVersion(model, version));
  for (const auto& [key, value] : mv.tags) {
    if (key.rfind("ab_test.", 0) == 0) ABGATE_RETURN_IF_ERROR(reg.DeleteModelVersionTag(model, version, key));
  }
  return absl::OkStatus();
}

absl::Status ApplyPromotion(registry::MlflowClient& reg, GatewayAdmin& gateway, const Decision& d, FleetState* applied,
                            std::chrono::milliseconds fleet_timeout) {
  // Registry first: if it fails, traffic is unchanged and the decision can be retried.
  ABGATE_RETURN_IF_ERROR(reg.TransitionStage(d.model, d.winner.version, "Production", true).status());
  for (const ArmVersion& loser : d.losers) {
    if (loser.version == d.winner.version) continue;
    ABGATE_RETURN_IF_ERROR(reg.TransitionStage(d.model, loser.version, "Archived", false).status());
    ABGATE_RETURN_IF_ERROR(reg.SetModelVersionTag(d.model, loser.version, "ab_test.decision", "lost"));
    ABGATE_RETURN_IF_ERROR(reg.SetModelVersionTag(d.model, loser.version, "ab_test.status", "lost"));
    ABGATE_RETURN_IF_ERROR(reg.SetModelVersionTag(d.model, loser.version, "ab_test.experiment", d.experiment));
    ABGATE_RETURN_IF_ERROR(reg.DeleteModelVersionTag(d.model, loser.version, d.candidate_tag));
  }
  ABGATE_RETURN_IF_ERROR(reg.SetAlias(d.model, "champion", d.winner.version));
  ABGATE_RETURN_IF_ERROR(reg.DeleteAlias(d.model, "challenger"));
  auto tags = EvidenceTags(d.experiment, d.evidence);
  tags.emplace_back("ab_test.decision", "promoted");
  tags.emplace_back("ab_test.status", "promoted");
  for (const auto& [k, v] : tags) ABGATE_RETURN_IF_ERROR(reg.SetModelVersionTag(d.model, d.winner.version, k, v));
  ABGATE_RETURN_IF_ERROR(reg.DeleteModelVersionTag(d.model, d.winner.version, d.candidate_tag));
  json::object evidence = d.evidence;
  evidence["decision"] = "promoted";
  evidence["winner_version"] = d.winner.version;
  ABGATE_ASSIGN_OR_RETURN(json::object view, gateway.Promote(d.experiment, d.winner.arm, evidence));
  // Done only once every gateway sharing the store routes everything to the winner.
  ABGATE_ASSIGN_OR_RETURN(const int64_t version, ConfigVersionOf(view));
  ABGATE_ASSIGN_OR_RETURN(FleetState fleet, gateway.WaitAndRecordFleet(d.experiment, version, fleet_timeout));
  if (applied) *applied = std::move(fleet);
  return absl::OkStatus();
}

absl::Status ApplyRollback(registry::MlflowClient& reg, GatewayAdmin& gateway, const std::string& experiment,
                           const std::string& model, const ArmVersion& candidate, const std::string& outcome,
                           const std::string& reason, const json::object& evidence, const std::string& candidate_tag) {
  json::object ev = evidence;
  ev["decision"] = outcome;
  ev["status"] = outcome;
  ev["reason"] = reason;
  // Traffic first: a failing candidate must stop serving even if the registry is unreachable.
  ABGATE_RETURN_IF_ERROR(gateway.Rollback(experiment, ev).status());
  for (const auto& [k, v] : EvidenceTags(experiment, ev)) {
    ABGATE_RETURN_IF_ERROR(reg.SetModelVersionTag(model, candidate.version, k, v));
  }
  ABGATE_RETURN_IF_ERROR(reg.DeleteModelVersionTag(model, candidate.version, candidate_tag));
  return reg.DeleteAlias(model, "challenger");
}

absl::StatusOr<std::string> AutoWinner(const analysis::Report& report, const config::ExperimentConfig& experiment,
                                       const std::map<std::string, analysis::ServingHealth>& health) {
  return WinnerOf(analysis::Decide(report, PolicyOf(experiment, report.alpha), health), report.experiment);
}

absl::StatusOr<Decision> PromoteExperiment(registry::MlflowClient& reg, GatewayAdmin& gateway,
                                           const std::string& experiment, const std::string& winner,
                                           FleetState* applied) {
  ABGATE_ASSIGN_OR_RETURN(json::object view, gateway.GetExperiment(experiment));
  view.erase("runtime");  // the gateway's view: the config plus its runtime state
  ABGATE_ASSIGN_OR_RETURN(config::ExperimentConfig cfg, config::ParseExperimentConfig(view, experiment));
  Decision d;
  d.experiment = experiment;
  d.model = cfg.model;
  if (d.model.empty()) {
    return absl::FailedPreconditionError(StrCat("experiment ", experiment, " names no registry model (`model:`)"));
  }
  // The decision, by the one rule: the report (whole experiment) and the serving counters.
  ABGATE_ASSIGN_OR_RETURN(analysis::Report report, gateway.Report(experiment));
  ABGATE_ASSIGN_OR_RETURN(json::object health_json, gateway.Health(experiment));
  ABGATE_ASSIGN_OR_RETURN(auto health, HealthByArm(health_json));
  const analysis::Decision decision = analysis::Decide(report, PolicyOf(cfg, report.alpha), health);
  std::string chosen = winner;
  if (winner == "auto") {
    ABGATE_ASSIGN_OR_RETURN(chosen, WinnerOf(decision, experiment));  // AutoWinner's rule, decided once
  }
  bool found = false;
  for (const auto& a : cfg.arms) {
    ArmVersion av{a.name, a.version};
    if (a.name == chosen) {
      d.winner = av;
      found = true;
    } else {
      d.losers.push_back(av);
    }
  }
  if (!found) return absl::InvalidArgumentError(StrCat("experiment ", experiment, " has no arm '", chosen, "'"));
  if (d.winner.version.empty()) {
    // An arm by alias: the version that served it, from the report.
    if (const auto* a = report.Arm(chosen); a && !a->versions.empty()) d.winner.version = a->versions.back().version;
  }
  if (d.winner.version.empty()) return absl::FailedPreconditionError(StrCat("arm ", chosen, " names no model version"));
  d.evidence = EvidenceJson(decision, report);
  d.evidence["decided_by"] = winner == "auto" ? "auto" : "operator";
  ABGATE_RETURN_IF_ERROR(ApplyPromotion(reg, gateway, d, applied));
  return d;
}

}  // namespace abgate::control
