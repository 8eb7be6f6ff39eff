#include "control/manual_rollout.h"

#include <boost/json.hpp>

#include "common/status_macros.h"
#include "common/strings.h"

namespace abgate::control {
namespace json = boost::json;

absl::StatusOr<RolloutStep> StepRollout(GatewayAdmin& gateway, const std::string& experiment, double percent,
                                        const std::string& arm, std::chrono::milliseconds timeout) {
  if (!(percent >= 0 && percent <= 100)) return absl::InvalidArgumentError("--percent must be within [0, 100]");
  ABGATE_ASSIGN_OR_RETURN(json::object view, gateway.GetExperiment(experiment));
  ABGATE_ASSIGN_OR_RETURN(const int64_t base_version, ConfigVersionOf(view));
  const json::value* arms = view.if_contains("arms");
  const json::value* control = view.if_contains("control");
  if (!arms || !arms->is_array() || !control || !control->is_string()) {
    return absl::InvalidArgumentError(StrCat("gateway: experiment ", experiment, " has no arms or control"));
  }
  RolloutStep step;
  step.experiment = experiment;
  // The weights in force now (a time ramp included), in percent.
  std::vector<double> current;
  const json::value* runtime = view.if_contains("runtime");
  const json::value* now = runtime && runtime->is_object() ? runtime->as_object().if_contains("current_weights") : nullptr;
  for (const auto& a : arms->as_array()) {
    const json::value* name = a.is_object() ? a.as_object().if_contains("name") : nullptr;
    if (!name || !name->is_string()) return absl::InvalidArgumentError("gateway: an arm has no name");
    step.arms.push_back(std::string(name->as_string()));
  }
  if (now && now->is_array() && now->as_array().size() == step.arms.size()) {
    for (const auto& w : now->as_array()) current.push_back(w.is_number() ? w.to_number<double>() : 0);
  } else {
    for (const auto& a : arms->as_array()) {
      const json::value* w = a.as_object().if_contains("weight");
      current.push_back(w && w->is_number() ? w->to_number<double>() : 0);
    }
  }
  double total = 0;
  for (double w : current) total += w;
  const std::string control_arm(control->as_string());
  step.arm = arm;
  if (step.arm.empty()) {
    if (step.arms.size() != 2) {
      return absl::InvalidArgumentError(StrCat("experiment ", experiment, " has ", step.arms.size(),
                                               " arms: name the one to ramp with --arm"));
    }
    step.arm = step.arms[0] == control_arm ? step.arms[1] : step.arms[0];
  }
  if (step.arm == control_arm) return absl::InvalidArgumentError("ramp a treatment arm, not the control");
  // The ramped arm gets `percent`, other treatment arms keep their share, the control the rest.
  double others = 0;
  int ramped = -1, control_index = -1;
  for (size_t i = 0; i < step.arms.size(); ++i) {
    if (step.arms[i] == step.arm) {
      ramped = static_cast<int>(i);
    } else if (step.arms[i] == control_arm) {
      control_index = static_cast<int>(i);
    } else {
      others += total > 0 ? 100 * current[i] / total : 0;
    }
  }
  if (ramped < 0) return absl::InvalidArgumentError(StrCat("experiment ", experiment, " has no arm '", step.arm, "'"));
  if (control_index < 0) return absl::InvalidArgumentError(StrCat("experiment ", experiment, " has no control arm"));
  if (percent + others > 100 + 1e-9) {
    return absl::InvalidArgumentError(StrCat("the other treatment arms already take ", others, "%: at most ",
                                             100 - others, "% is left for ", step.arm));
  }
  step.weights.assign(step.arms.size(), 0);
  for (size_t i = 0; i < step.arms.size(); ++i) {
    step.weights[i] = total > 0 ? 100 * current[i] / total : 0;
  }
  step.weights[ramped] = percent;
  step.weights[control_index] = std::max(0.0, 100 - percent - others);
  ABGATE_ASSIGN_OR_RETURN(json::object reply, gateway.SetWeights(experiment, step.weights, base_version));
  ABGATE_ASSIGN_OR_RETURN(step.config_version, ConfigVersionOf(reply));
  const auto changed = std::chrono::steady_clock::now();
  ABGATE_ASSIGN_OR_RETURN(FleetState fleet, gateway.WaitAndRecordFleet(experiment, step.config_version, timeout));
  step.waited_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - changed).count();
  step.live_replicas = fleet.live();
  return step;
}

}  // namespace abgate::control
