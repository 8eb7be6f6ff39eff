// abgate assign --config FILE --experiment NAME UNIT...: prints UNIT<TAB>ARM (or UNIT<TAB>-
// outside coverage, outside the experiment's namespace range, or in the global holdout) with
// exactly the functions the gateway uses. A bandit draws every request afresh, so no unit has
// an arm: it prints the chance of each arm under the weights in force (the stored config, as
// the gateway serves it), the same numbers the gateway records in each exposure.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "assign/allocation.h"
#include "assign/eligibility.h"
#include "assign/hash.h"
#include "analysis/analysis.h"
#include "cli/commands.h"
#include "config/gateway_config.h"
#include "config/json_reader.h"

namespace abgate::cli {

Command AddAssign(CLI::App& app) {
  auto* cmd = app.add_subcommand("assign", "Print the arm of each unit for an experiment");
  struct Args {
    std::string config;
    std::string experiment;
    std::string at = "0s";
    std::string store;
    std::vector<std::string> units;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("--config,-c", args->config, "YAML config file")->required();
  cmd->add_option("--experiment,-e", args->experiment, "experiment name")->required();
  cmd->add_option("--elapsed", args->at, "time since the experiment started, for ramps (e.g. 36h); default 0s");
  cmd->add_option("--store", args->store,
                  "event store holding changes made through the admin API (default: the config's events.store; "
                  "read for bandits, whose weights live there)");
  cmd->add_option("units", args->units, "unit ids")->required();
  return {cmd, [args]() -> int {
    auto config = config::LoadGatewayConfig(args->config);
    if (!config.ok()) {
      std::fprintf(stderr, "abgate assign: %s\n", std::string(config.status().message()).c_str());
      return 1;
    }
    const config::ExperimentConfig* exp = nullptr;
    for (const auto& e : config->experiments) {
      if (e.name == args->experiment) exp = &e;
    }
    if (!exp) {
      std::fprintf(stderr, "abgate assign: no experiment named '%s' in %s\n", args->experiment.c_str(),
                   args->config.c_str());
      return 1;
    }
    // A bandit's weights are recomputed in the gateway and stored: read them where it does.
    std::optional<config::ExperimentConfig> stored;
    if (exp->routing_mode == config::RoutingMode::kBandit || !args->store.empty()) {
      const std::string store = args->store.empty() ? config->events.store : args->store;
      auto from_store = analysis::ReadStoredExperiment(store, exp->name);
      if (!from_store.ok()) {
        std::fprintf(stderr, "abgate assign: %s: %s\n", store.c_str(), std::string(from_store.status().message()).c_str());
        return 1;
      }
      if (*from_store) {
        stored = std::move(*from_store);
        exp = &*stored;
      }
    }
    auto elapsed = config::ParseDurationUs(args->at);
    if (!elapsed.ok()) {
      std::fprintf(stderr, "abgate assign: --elapsed: %s\n", std::string(elapsed.status().message()).c_str());
      return 1;
    }
    std::vector<double> weights;
    std::vector<std::string> names;
    for (const auto& a : exp->arms) {
      weights.push_back(a.weight);
      names.push_back(a.name);
    }
    std::vector<assign::RampStep> ramp;
    for (const auto& s : exp->ramp) ramp.push_back({s.after_us, s.weights});
    auto allocation = assign::Allocation::Create(weights, exp->coverage, ramp, names);
    if (!allocation.ok()) {
      std::fprintf(stderr, "abgate assign: %s\n", std::string(allocation.status().message()).c_str());
      return 1;
    }
    const assign::SeededHasher hasher(exp->HashSeed());
    const assign::Holdout holdout(config->holdout.seed, config->holdout.percent);
    std::optional<assign::NamespaceRange> ns;
    if (exp->namespace_range) ns = assign::NamespaceRange{exp->namespace_range->name, exp->namespace_range->low,
                                                          exp->namespace_range->high};
    const bool bandit = exp->routing_mode == config::RoutingMode::kBandit;
    std::string chances = "bandit:";  // each arm's chance per request, as the gateway records it
    for (size_t i = 0; i < names.size(); ++i) {
      char p[32];
      std::snprintf(p, sizeof p, "%.6g", allocation->ProbabilityAt(static_cast<int>(i), *elapsed));
      chances += " " + names[i] + "=" + p;
    }
    for (const auto& unit : args->units) {
      const bool excluded = holdout.Contains(unit) || (ns && !assign::InNamespace(*ns, unit));
      if (bandit) {
        std::printf("%s\t%s\n", unit.c_str(), excluded ? "-" : chances.c_str());
        continue;
      }
      const int arm = excluded ? -1 : allocation->ArmForBucket(hasher.Bucket(unit), *elapsed);
      std::printf("%s\t%s\n", unit.c_str(), arm < 0 ? "-" : names[arm].c_str());
    }
    return 0;
  }};
}

}  // namespace abgate::cli
