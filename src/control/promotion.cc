#include "control/promotion.h"

#include <chrono>
#include <ctime>

#include <boost/json.hpp>

#include "common/status_macros.h"
#include "common/strings.h"
#include "config/json_format.h"
#include "control/rollout.h"

namespace abgate::control {
namespace json = boost::json;

namespace {

std::string UtcIso() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string Text(const json::value& v) { return v.is_string() ? std::string(v.as_string()) : config::ToJson(v); }

}  // namespace

std::vector<std::pair<std::string, std::string>> EvidenceTags(const std::string& experiment,
                                                              const json::object& evidence) {
  std::vector<std::pair<std::string, std::string>> tags = {{"ab_test.experiment", experiment},
                                                           {"ab_test.decided_at", UtcIso()}};
  for (const auto& [k, v] : evidence) {
    tags.emplace_back(StrCat("ab_test.", std::string_view(k.data(), k.size())), Text(v).substr(0, 5000));
  }
  return tags;
}

absl::Status ApplyPromotion(registry::MlflowClient& reg, GatewayAdmin& gateway, const Decision& d, FleetState* applied,
                            std::chrono::milliseconds fleet_timeout) {
  // Registry first: if it fails, traffic is unchanged and the decision can be retried.
  ABGATE_RETURN_IF_ERROR(reg.TransitionStage(d.model, d.winner.version, "Production", true).status());
  for (const ArmVersion& loser : d.losers) {
    if (loser.version == d.winner.version) continue;
    ABGATE_RETURN_IF_ERROR(reg.TransitionStage(d.model, loser.version, "Archived", false).status());
    ABGATE_RETURN_IF_ERROR(reg.SetModelVersionTag(d.model, loser.version, "ab_test.decision", "lost"));
    ABGATE_RETURN_IF_ERROR(reg.SetModelVersionTag(d.model, loser.version, "ab_test.experiment", d.experiment));
    ABGATE_RETURN_IF_ERROR(reg.DeleteModelVersionTag(d.model, loser.version, d.candidate_tag));
  }
  ABGATE_RETURN_IF_ERROR(reg.SetAlias(d.model, "champion", d.winner.version));
  ABGATE_RETURN_IF_ERROR(reg.DeleteAlias(d.model, "challenger"));
  auto tags = EvidenceTags(d.experiment, d.evidence);
  tags.emplace_back("ab_test.decision", "promoted");
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
  ev["reason"] = reason;
  // Traffic first: a failing candidate must stop serving even if the registry is unreachable.
  ABGATE_RETURN_IF_ERROR(gateway.Rollback(experiment, ev).status());
  for (const auto& [k, v] : EvidenceTags(experiment, ev)) {
    ABGATE_RETURN_IF_ERROR(reg.SetModelVersionTag(model, candidate.version, k, v));
  }
  ABGATE_RETURN_IF_ERROR(reg.DeleteModelVersionTag(model, candidate.version, candidate_tag));
  return reg.DeleteAlias(model, "challenger");
}

absl::StatusOr<Decision> PromoteExperiment(registry::MlflowClient& reg, GatewayAdmin& gateway,
                                           const std::string& experiment, const std::string& winner,
                                           FleetState* applied) {
  ABGATE_ASSIGN_OR_RETURN(json::object view, gateway.GetExperiment(experiment));
  const json::object& cfg = view.contains("config") && view.at("config").is_object() ? view.at("config").as_object() : view;
  Decision d;
  d.experiment = experiment;
  d.model = cfg.contains("model") ? Text(cfg.at("model")) : "";
  if (d.model.empty()) {
    return absl::FailedPreconditionError(StrCat("experiment ", experiment, " names no registry model (`model:`)"));
  }
  std::vector<ArmVersion> arms;
  for (const auto& a : cfg.at("arms").as_array()) {
    const auto& o = a.as_object();
    arms.push_back({Text(o.at("name")), o.contains("version") ? Text(o.at("version")) : ""});
  }
  ABGATE_ASSIGN_OR_RETURN(json::object report, gateway.Results(experiment));
  std::string chosen = winner;
  const json::object& decision = report.at("decision").as_object();
  if (winner == "auto") {
    if (decision.at("action") != json::value("promote") || !decision.at("winner").is_string()) {
      return absl::FailedPreconditionError(StrCat("not promoting ", experiment, ": ", Text(decision.at("reason"))));
    }
    chosen = Text(decision.at("winner"));
    // Serving guardrails since the gateway started.
    ABGATE_ASSIGN_OR_RETURN(json::object health, gateway.Health(experiment));
    auto* g = cfg.if_contains("guardrails");
    const double max_error = g && g->is_object() && g->as_object().contains("max_error_rate")
                                 ? g->as_object().at("max_error_rate").to_number<double>() : 0;
    const double max_p99 = g && g->is_object() && g->as_object().contains("max_p99_latency_ms")
                               ? g->as_object().at("max_p99_latency_ms").to_number<double>() : 0;
    for (const auto& a : health.at("arms").as_array()) {
      if (a.as_object().at("arm") != json::value(chosen)) continue;
      const ArmHealth h = ArmHealthFromJson(a.as_object());
      const double rate = h.attempts ? static_cast<double>(h.failures) / h.attempts : 0;
      if (max_error > 0 && rate > max_error) {
        return absl::FailedPreconditionError(StrCat("not promoting ", chosen, ": error rate ", rate, " > ", max_error));
      }
      if (max_p99 > 0 && h.attempts >= 100 && P99Ms(h) > max_p99) {
        return absl::FailedPreconditionError(StrCat("not promoting ", chosen, ": p99 latency over ", max_p99, " ms"));
      }
    }
  }
  bool found = false;
  for (const auto& a : arms) {
    if (a.arm == chosen) {
      d.winner = a;
      found = true;
    } else {
      d.losers.push_back(a);
    }
  }
  if (!found) return absl::InvalidArgumentError(StrCat("experiment ", experiment, " has no arm '", chosen, "'"));
  if (d.winner.version.empty()) return absl::FailedPreconditionError(StrCat("arm ", chosen, " names no model version"));
  // Evidence: the primary comparison of the winner (or of the loser, when the control wins).
  d.evidence["metric"] = decision.at("metric");
  d.evidence["reason"] = decision.at("reason");
  d.evidence["decided_by"] = winner == "auto" ? "auto" : "operator";
  if (auto* list = report.if_contains("comparisons"); list && list->is_array()) {
    for (const auto& c : list->as_array()) {
      const auto& o = c.as_object();
      if (o.at("metric") != decision.at("metric")) continue;
      for (const char* key : {"test", "diff", "diff_ci", "lift", "lift_ci", "p_value", "sequential_p_value"}) {
        if (auto* x = o.if_contains(key)) d.evidence[key] = *x;
      }
      break;
    }
  }
  json::object units;
  for (const auto& a : report.at("arms").as_array()) units[Text(a.as_object().at("arm"))] = a.as_object().at("units");
  d.evidence["units"] = std::move(units);
  ABGATE_RETURN_IF_ERROR(ApplyPromotion(reg, gateway, d, applied));
  return d;
}

}  // namespace abgate::control
