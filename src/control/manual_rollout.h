// A ramp stepped by hand (`abgate rollout --experiment E --percent P`): the candidate arm gets P%
// of the traffic, the control the rest, in one weights change checked against the version the
// step was computed from, and the call returns once every live gateway sharing the store serves
// it (recorded in the audit log as fleet_applied). Blocking; thread-compatible.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "control/gateway_admin.h"

namespace abgate::control {

struct RolloutStep {
  std::string experiment;
  std::string arm;  // the arm ramped
  std::vector<std::string> arms;
  std::vector<double> weights;  // in force now, percent, one per arm
  int64_t config_version = 0;
  int live_replicas = 0;
  int64_t waited_ms = 0;  // from the change until every live gateway served it
};

// `arm` empty: the experiment's only non-control arm. InvalidArgument for a percent outside
// [0, 100] or arms that leave the control no share; FailedPrecondition (409) when the experiment
// changed meanwhile or the step would move units out of an arm; DeadlineExceeded when some live
// gateway has not applied it within `timeout` (the change itself is in force where applied).
absl::StatusOr<RolloutStep> StepRollout(GatewayAdmin& gateway, const std::string& experiment, double percent,
                                        const std::string& arm, std::chrono::milliseconds timeout);

}  // namespace abgate::control
