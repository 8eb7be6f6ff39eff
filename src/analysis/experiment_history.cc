// What the store knows about an experiment besides its events: the config last stored through
// the admin API, its weights over time (the audit trail) and the metrics it has outcomes for.
// `abgate analyze --store` needs no YAML with these, and SRM is checked against the weights
// that were in force.
#include <algorithm>
#include <cstdlib>
#include <functional>
#include <map>

#include <boost/json.hpp>

#include "analysis/analysis.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "config/json_format.h"
#include "events/event_reader.h"

namespace abgate::analysis {

namespace json = boost::json;

namespace {

absl::StatusOr<config::ExperimentConfig> ParseStored(const std::string& text, const std::string& what) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return absl::InvalidArgumentError(StrCat(what, ": not a JSON object"));
  // A change made with evidence (promote, rollback) is audited as {experiment, evidence}.
  if (const json::value* inner = v.as_object().if_contains("experiment"); inner && inner->is_object() &&
                                                                           v.as_object().contains("evidence")) {
    json::value config = *inner;
    v = std::move(config);
  }
  v.as_object().erase("runtime");
  return config::ParseExperimentConfig(v, what);
}

}  // namespace

absl::StatusOr<std::optional<config::ExperimentConfig>> ReadStoredExperiment(events::EventReader& reader,
                                                                             const std::string& experiment) {
  ABGATE_ASSIGN_OR_RETURN(const std::string stored, reader.ReadStoredConfig(experiment));
  if (stored.empty()) return std::optional<config::ExperimentConfig>();
  ABGATE_ASSIGN_OR_RETURN(auto parsed, ParseStored(stored, StrCat("stored experiment ", experiment)));
  return std::optional<config::ExperimentConfig>(std::move(parsed));
}

absl::StatusOr<std::vector<WeightPeriod>> ReadWeightHistory(events::EventReader& reader,
                                                            const config::ExperimentConfig& experiment) {
  auto weights_of = [&](const config::ExperimentConfig& c) {
    std::vector<double> w;
    for (const auto& arm : experiment.arms) {
      auto it = std::find_if(c.arms.begin(), c.arms.end(), [&](const auto& a) { return a.name == arm.name; });
      w.push_back(it == c.arms.end() ? 0.0 : it->weight);
    }
    return w;
  };
  // Each audited change's `after` starts a period; the first change's `before` (the YAML the
  // gateway started from) was in force until then. A bandit's recomputations are not audited
  // one by one: each row of its compact weight history (bandit_weights) starts a period too.
  std::vector<std::pair<int64_t, std::vector<double>>> changes;  // (from, weights), in time order
  auto add = [&](int64_t start_us, const std::string& text) {
    if (text.empty()) return;  // a deletion, or an action that names no config
    auto c = ParseStored(text, "audited config");
    if (!c.ok() || c->name != experiment.name) return;
    // A paused or stopped experiment assigns no one (its control serves outside the experiment),
    // so its weights start no period: units first exposed after a promotion were assigned by the
    // weights before it (requests in flight while the change was applied), never by the
    // winner's 0/100.
    if (c->state != config::ExperimentState::kRunning) return;
    changes.emplace_back(start_us, weights_of(*c));
  };
  ABGATE_ASSIGN_OR_RETURN(const std::vector<events::AuditedConfig> history, reader.ReadConfigHistory(experiment.name));
  for (const events::AuditedConfig& change : history) {
    if (changes.empty()) add(0, change.before_json);
    add(change.ts_us, change.after_json);
  }
  // (Only for bandits: a PostgreSQL store no newer gateway has opened has no such table.)
  if (experiment.routing_mode == config::RoutingMode::kBandit) {
    ABGATE_ASSIGN_OR_RETURN(const std::vector<events::BanditWeights> updates, reader.ReadBanditWeights(experiment.name));
    for (const events::BanditWeights& u : updates) {
      boost::system::error_code ec;
      const json::value v = json::parse(u.weights_json, ec);
      if (ec || !v.is_object()) continue;
      std::vector<double> w;
      for (const auto& arm : experiment.arms) {
        const json::value* x = v.as_object().if_contains(arm.name);
        w.push_back(x && x->is_number() ? x->to_number<double>() : 0.0);
      }
      changes.emplace_back(u.ts_us, std::move(w));
    }
  }
  std::stable_sort(changes.begin(), changes.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<WeightPeriod> periods;
  for (auto& [start_us, w] : changes) {
    if (!periods.empty() && periods.back().weights == w) continue;
    periods.push_back({start_us, std::move(w)});
  }
  if (periods.empty()) periods.push_back({0, weights_of(experiment)});
  periods.front().start_us = 0;
  return periods;
}

absl::StatusOr<std::vector<WeightPeriod>> ReadWeightHistory(events::EventReader& reader,
                                                            const config::ExperimentConfig& experiment,
                                                            WeightHistoryCache& cache) {
  // Counted before the history is read: a row stored in between is read now and counted next
  // time, which reads again (never a stale history, at worst one read too many).
  ABGATE_ASSIGN_OR_RETURN(const int64_t rows, reader.CountHistoryRows(experiment.name));
  std::string config_json = config::ToJson(config::ExperimentToJson(experiment));
  if (rows >= 0 && rows == cache.rows && config_json == cache.config_json) return cache.periods;
  ABGATE_ASSIGN_OR_RETURN(std::vector<WeightPeriod> periods, ReadWeightHistory(reader, experiment));
  cache = {std::move(config_json), rows, periods};
  return periods;
}

absl::StatusOr<std::vector<MetricSpec>> ReadStoredMetrics(events::EventReader& reader, const std::string& experiment) {
  ABGATE_ASSIGN_OR_RETURN(const std::vector<events::StoredMetric> stored, reader.ReadOutcomeMetrics(experiment));
  std::map<std::string, bool> binary;  // by name
  for (const auto& m : stored) binary[m.name] = m.binary;
  std::vector<MetricSpec> out;
  for (const auto& [name, b] : binary) out.push_back({name, b ? MetricKind::kBinary : MetricKind::kContinuous});
  return out;
}

// The same, opening the store named by a URI.
absl::StatusOr<std::optional<config::ExperimentConfig>> ReadStoredExperiment(const std::string& store_uri,
                                                                             const std::string& experiment) {
  ABGATE_ASSIGN_OR_RETURN(auto reader, events::OpenEventReader(store_uri));
  return ReadStoredExperiment(*reader, experiment);
}

absl::StatusOr<std::vector<WeightPeriod>> ReadWeightHistory(const std::string& store_uri,
                                                            const config::ExperimentConfig& experiment) {
  ABGATE_ASSIGN_OR_RETURN(auto reader, events::OpenEventReader(store_uri));
  return ReadWeightHistory(*reader, experiment);
}

absl::StatusOr<std::vector<MetricSpec>> ReadStoredMetrics(const std::string& store_uri, const std::string& experiment) {
  ABGATE_ASSIGN_OR_RETURN(auto reader, events::OpenEventReader(store_uri));
  return ReadStoredMetrics(*reader, experiment);
}

}  // namespace abgate::analysis
