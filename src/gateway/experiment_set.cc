#include "gateway/experiment_set.h"

#include "common/status_macros.h"
#include "common/strings.h"

namespace abgate::gateway {

absl::StatusOr<std::shared_ptr<const CompiledExperiment>> CompiledExperiment::Create(
    config::ExperimentConfig config, int64_t start_us, Metrics& metrics, const ModelLoader& load_model) {
  ABGATE_RETURN_IF_ERROR(config::ValidateExperiment(config));
  std::vector<double> weights;
  std::vector<std::string> names;
  for (const auto& arm : config.arms) {
    weights.push_back(arm.weight);
    names.push_back(arm.name);
  }
  std::vector<assign::RampStep> ramp;
  for (const auto& step : config.ramp) ramp.push_back({step.after_us, step.weights});
  auto allocation = assign::Allocation::Create(std::move(weights), config.coverage, std::move(ramp), names);
  if (!allocation.ok()) {
    return absl::InvalidArgumentError(StrCat("experiment ", config.name, ": ", allocation.status().message()));
  }
  auto e = std::shared_ptr<CompiledExperiment>(new CompiledExperiment{
      std::move(config), std::move(*allocation), assign::SeededHasher(""), start_us, 0, {}, nullptr});
  e->hasher = assign::SeededHasher(e->config.HashSeed());
  e->payload_hasher = assign::SeededHasher(StrCat("payload-sample:", e->config.seed));
  e->payload_buckets = static_cast<uint32_t>(e->config.payload_sample_rate * assign::kNumBuckets + 0.5);
  e->control = e->config.ControlIndex();
  if (const auto& ns = e->config.namespace_range) e->namespace_range = assign::NamespaceRange{ns->name, ns->low, ns->high};
  e->metrics = metrics.Experiment(e->config.name);
  for (const auto& arm : e->config.arms) {
    CompiledArm c;
    c.name = arm.name;
    c.version = arm.version;
    if (arm.upstream.empty()) {
      const std::string uri = e->config.ArmModelUri(arm);
      auto model = load_model ? load_model(uri) : absl::FailedPreconditionError("no model loader");
      if (!model.ok()) {
        return absl::Status(model.status().code(), StrCat("experiment ", e->config.name, ", arm ", arm.name,
                                                          ": cannot load ", uri, ": ", model.status().message()));
      }
      c.model = std::move(model->predictor);
      // An arm by alias serves (and records in every exposure, header and reply) the version
      // the alias pointed at when this snapshot was compiled.
      if (c.version.empty()) c.version = model->version;
    } else {
      ABGATE_ASSIGN_OR_RETURN(c.upstream, config::ParseUpstreamUrl(arm.upstream));
    }
    c.metrics = metrics.Arm(e->config.name, arm.name);
    c.metrics->backend.store(static_cast<int>(c.model ? ArmBackend::kInProcess : ArmBackend::kUpstream),
                             std::memory_order_relaxed);
    e->arms.push_back(std::move(c));
  }
  return std::shared_ptr<const CompiledExperiment>(std::move(e));
}

}  // namespace abgate::gateway
