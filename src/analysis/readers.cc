// Builders of AnalysisInput: the seed's ab_results.csv and a configured experiment in the event
// store (ReadEventStore itself is in event_store_reader.cc), and the shadow traffic summary.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <unordered_map>

#include <boost/json.hpp>

#include "analysis/analysis.h"
#include "common/csv.h"
#include "common/hash64.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "events/event_reader.h"

namespace abgate::analysis {
namespace {

// Orders versions numerically when both are numbers ("7" < "10"), else as text.
// Numeric versions first, by value, then the others by text: a strict weak order, as std::sort
// requires (comparing by value only when both were numbers was not: 2 < 1e1 < 1f < 2).
bool VersionLess(const std::string& a, const std::string& b) {
  double x = 0, y = 0;
  const bool a_num = common::ParseFiniteDouble(a, x);
  const bool b_num = common::ParseFiniteDouble(b, y);
  if (a_num != b_num) return a_num;
  if (a_num && x != y) return x < y;
  return a < b;
}

// Drops units seen in more than one arm (multi[i]) and counts them.
void ExcludeMultiArmUnits(AnalysisInput& input, const std::vector<bool>& multi) {
  std::vector<UnitObservation> kept;
  kept.reserve(input.units.size());
  for (size_t i = 0; i < input.units.size(); ++i) {
    if (multi[i]) {
      ++input.multiple_exposure_units;
    } else {
      kept.push_back(std::move(input.units[i]));
    }
  }
  input.units = std::move(kept);
}

}  // namespace

absl::StatusOr<AnalysisInput> ReadResultsCsv(const std::string& path, const std::string& control_version) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(StrCat(path, ": cannot open"));
  std::string line;
  if (!std::getline(in, line)) return absl::InvalidArgumentError(StrCat(path, ": empty file"));
  const auto header = common::SplitCsvRecord(line);
  std::map<std::string, size_t> col;
  for (size_t i = 0; i < header.size(); ++i) col[header[i]] = i;
  for (const char* need : {"user_id", "model_version", "y_true", "y_pred"}) {
    if (!col.contains(need)) {
      return absl::InvalidArgumentError(StrCat(path, ": missing column '", need, "' (need user_id, model_version, y_true, y_pred)"));
    }
  }
  struct Row {
    std::string version;
    double y_true, y_pred;
    std::string user;
  };
  std::vector<Row> rows;
  size_t line_no = 1;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line == "\r") continue;
    const auto cells = common::SplitCsvRecord(line);
    if (cells.size() < header.size()) {
      return absl::InvalidArgumentError(StrCat(path, ":", line_no, ": expected ", header.size(), " fields, got ", cells.size()));
    }
    Row r;
    r.user = cells[col["user_id"]];
    r.version = cells[col["model_version"]];
    std::string yt = cells[col["y_true"]];
    if (yt == "true" || yt == "True") yt = "1";
    if (yt == "false" || yt == "False") yt = "0";
    if (!common::ParseFiniteDouble(yt, r.y_true) || (r.y_true != 0 && r.y_true != 1)) {
      return absl::InvalidArgumentError(StrCat(path, ":", line_no, ": y_true must be 0 or 1, got '", cells[col["y_true"]], "'"));
    }
    if (!common::ParseFiniteDouble(cells[col["y_pred"]], r.y_pred)) {
      return absl::InvalidArgumentError(StrCat(path, ":", line_no, ": y_pred must be a number, got '", cells[col["y_pred"]], "'"));
    }
    if (r.user.empty() || r.version.empty()) {
      return absl::InvalidArgumentError(StrCat(path, ":", line_no, ": user_id and model_version must not be empty"));
    }
    rows.push_back(std::move(r));
  }
  if (rows.empty()) return absl::InvalidArgumentError(StrCat(path, ": no data rows"));

  // Versions through a hash map, not a scan per row: a file of many distinct versions stays linear.
  std::unordered_map<std::string, int> version_index;
  std::vector<std::string> versions;
  for (const auto& r : rows) {
    if (version_index.try_emplace(r.version, 0).second) versions.push_back(r.version);
  }
  std::sort(versions.begin(), versions.end(), VersionLess);
  for (size_t i = 0; i < versions.size(); ++i) version_index[versions[i]] = static_cast<int>(i);
  AnalysisInput input;
  input.experiment = path;
  input.unit = "user";
  for (const auto& v : versions) input.arms.push_back({StrCat("v", v), v, 0, 0});
  if (control_version.empty()) {
    input.control = 0;
  } else {
    auto it = std::find(versions.begin(), versions.end(), control_version);
    if (it == versions.end()) return absl::InvalidArgumentError(StrCat("--control ", control_version, " is not a model_version in ", path));
    input.control = static_cast<int>(it - versions.begin());
  }
  input.metrics = {{"booked", MetricKind::kBinary}};
  std::unordered_map<std::string, size_t> unit_index;
  std::vector<bool> multi;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    const int arm = version_index.at(r.version);
    input.arms[arm].exposures++;
    auto [it, inserted] = unit_index.try_emplace(r.user, input.units.size());
    if (inserted) {
      input.units.push_back({arm, static_cast<int64_t>(i), absl::InlinedVector<double, 4>{r.y_true}});
      multi.push_back(false);
    } else {
      auto& u = input.units[it->second];
      if (u.arm != arm) multi[it->second] = true;
      u.values[0] = std::max(u.values[0], r.y_true);
    }
    input.predictions.push_back({arm, r.y_pred, static_cast<int>(r.y_true)});
  }
  ExcludeMultiArmUnits(input, multi);
  return input;
}

std::vector<MetricSpec> MetricsOf(const config::ExperimentConfig& experiment) {
  std::vector<MetricSpec> metrics;
  for (const auto& m : experiment.metrics) {
    MetricSpec spec{m.name, m.type == config::MetricType::kBinary ? MetricKind::kBinary : MetricKind::kContinuous,
                    m.cuped_covariate};
    if (m.primary) {
      metrics.insert(metrics.begin(), spec);
    } else {
      metrics.push_back(spec);
    }
  }
  if (metrics.empty()) metrics.push_back({"booked", MetricKind::kBinary});
  return metrics;
}

namespace json = boost::json;

void ShadowObservations::Add(const std::vector<events::ShadowRow>& stored) {
  const size_t before = rows.size();
  for (const events::ShadowRow& r : stored) {
    auto pair = std::find_if(pairs.begin(), pairs.end(), [&](const auto& p) { return p.first == r.arm && p.second == r.shadow_arm; });
    if (pair == pairs.end()) pair = pairs.insert(pairs.end(), {r.arm, r.shadow_arm});
    constexpr double kNone = std::numeric_limits<double>::quiet_NaN();
    rows.push_back({r.ts_us, common::Hash64(r.request_id), r.score.value_or(kNone), r.shadow_score.value_or(kNone),
                    r.latency_us, r.shadow_latency_us, r.status, static_cast<uint32_t>(pair - pairs.begin())});
  }
  // Ties (the same request mirrored twice at one time) keep the order read.
  auto less = [](const Row& x, const Row& y) {
    return x.ts_us != y.ts_us ? x.ts_us < y.ts_us : x.request_key < y.request_key;
  };
  const auto mid = rows.begin() + static_cast<std::ptrdiff_t>(before);
  std::stable_sort(mid, rows.end(), less);
  std::inplace_merge(rows.begin(), mid, rows.end(), less);
}

std::optional<json::object> ShadowSummaryOf(const ShadowObservations& shadow) {
  const auto& rows = shadow.rows;
  if (rows.empty()) return std::nullopt;
  // Disagreement: the two scores on different sides of 0.5; correlation: Pearson's r.
  int64_t failed = 0, pairs = 0, disagree = 0;
  double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0, abs_diff = 0;
  std::vector<double> primary_ms, shadow_ms;
  primary_ms.reserve(rows.size());
  shadow_ms.reserve(rows.size());
  for (const ShadowObservations::Row& r : rows) {
    primary_ms.push_back(static_cast<double>(r.latency_us) / 1000.0);
    shadow_ms.push_back(static_cast<double>(r.shadow_latency_us) / 1000.0);
    if (r.status >= 300 || !(r.shadow_score == r.shadow_score)) {
      ++failed;
      continue;
    }
    if (!(r.score == r.score)) continue;
    const double x = r.score, y = r.shadow_score;
    ++pairs;
    disagree += (x >= 0.5) != (y >= 0.5);
    sx += x;
    sy += y;
    sxx += x * x;
    syy += y * y;
    sxy += x * y;
    abs_diff += std::abs(x - y);
  }
  auto mean = [](const std::vector<double>& v) {
    double t = 0;
    for (double x : v) t += x;
    return t / static_cast<double>(v.size());
  };
  // The element a sorted copy has at q * n (nth_element: no full sort of every row per refresh).
  auto quantile = [](std::vector<double>& v, double q) {
    const auto k = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    return v[k];
  };
  const double primary_mean = mean(primary_ms), shadow_mean = mean(shadow_ms);
  json::object out{{"arm", shadow.pairs[rows[0].pair].first},
                   {"shadow_arm", shadow.pairs[rows[0].pair].second},
                   {"requests", static_cast<int64_t>(rows.size())},
                   {"shadow_failures", failed},
                   {"compared", pairs}};
  if (pairs > 0) {
    const double n = static_cast<double>(pairs);
    out["disagreement"] = static_cast<double>(disagree) / n;
    out["mean_abs_score_diff"] = abs_diff / n;
    const double vx = sxx / n - (sx / n) * (sx / n), vy = syy / n - (sy / n) * (sy / n);
    if (pairs >= 3 && vx > 0 && vy > 0) out["score_correlation"] = (sxy / n - (sx / n) * (sy / n)) / std::sqrt(vx * vy);
  }
  out["latency_ms"] = json::object{
      {"primary", json::object{{"mean", primary_mean}, {"p50", quantile(primary_ms, 0.5)}, {"p99", quantile(primary_ms, 0.99)}}},
      {"shadow", json::object{{"mean", shadow_mean}, {"p50", quantile(shadow_ms, 0.5)}, {"p99", quantile(shadow_ms, 0.99)}}}};
  return out;
}

absl::StatusOr<std::optional<json::object>> ReadShadowSummary(events::EventReader& reader,
                                                              const std::string& experiment, int64_t since_us) {
  ABGATE_ASSIGN_OR_RETURN(const std::vector<events::ShadowRow> rows, reader.ReadShadows(experiment, since_us));
  ShadowObservations shadow;
  shadow.Add(rows);
  return ShadowSummaryOf(shadow);
}

absl::StatusOr<std::optional<json::object>> ReadShadowSummary(const std::string& store_uri,
                                                              const std::string& experiment, int64_t since_us) {
  ABGATE_ASSIGN_OR_RETURN(auto reader, events::OpenEventReader(store_uri));
  return ReadShadowSummary(*reader, experiment, since_us);
}

namespace {

// The arms laid out as `experiment` configures them (see ReadConfiguredExperiment).
absl::StatusOr<AnalysisInput> Configure(events::EventReader& reader, const config::ExperimentConfig& experiment,
                                        absl::StatusOr<AnalysisInput> read, WeightHistoryCache* history = nullptr) {
  if (!read.ok()) return read.status();
  AnalysisInput input = std::move(*read);
  // The arms as the store saw them (name order) become the config's arms (config order); one
  // lookup by name in the configured arms serves the remap and the conclusion.
  const std::vector<ArmInfo> seen_arms = std::move(input.arms);
  input.arms.clear();
  for (const auto& arm : experiment.arms) {
    ArmInfo info{arm.name, arm.version, arm.weight, 0};
    for (const auto& seen : seen_arms) {
      if (seen.name != arm.name) continue;
      info.exposures = seen.exposures;
      // The versions that actually served it (an arm by alias has no configured version).
      info.versions = seen.versions;
      if (!seen.model_version.empty()) info.model_version = seen.model_version;
    }
    input.arms.push_back(std::move(info));
  }
  auto index = [&input](const std::string& name) {
    for (size_t i = 0; i < input.arms.size(); ++i) {
      if (input.arms[i].name == name) return static_cast<int>(i);
    }
    return -1;
  };
  std::vector<int> remap;
  for (const auto& seen : seen_arms) {
    const int i = index(seen.name);
    if (i < 0) {
      return absl::InvalidArgumentError(
          StrCat("the store has exposures for arm '", seen.name, "', which the config does not list"));
    }
    remap.push_back(i);
  }
  for (auto& u : input.units) u.arm = remap[u.arm];
  for (auto& p : input.predictions) p.arm = remap[p.arm];
  if (input.state) {  // a follower's statistics: their arms in the config's order
    std::vector<int> state_arms(input.arms.size(), -1);
    for (size_t seen = 0; seen < input.state_arms.size(); ++seen) state_arms[remap[seen]] = input.state_arms[seen];
    input.state_arms = std::move(state_arms);
  }
  input.control = experiment.ControlIndex();
  if (const auto& c = experiment.conclusion) {
    // Concluded: the winner is `control` now; compare the arms as they were tested.
    if (const int tested = index(c->tested_control); tested >= 0) input.control = tested;
    const int w = index(c->winner);
    const std::string version = w >= 0 ? input.arms[w].model_version : std::string();
    input.conclusion = Conclusion{c->action, c->winner, version, input.arms[input.control].name, c->at_us, c->reason};
  }
  // A unit's outcomes are complete once its attribution window has passed.
  input.maturity_us = experiment.attribution_window_us;
  input.as_of_us = std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  input.weights_known = experiment.ramp.empty();  // with a ramp, weights changed over time
  if (experiment.bandit) input.bandit = AnalysisInput::Bandit{experiment.bandit->floor};
  // Admin changes and ramp steps changed the weights over time: SRM is checked per period.
  if (input.weights_known) {
    auto periods = history ? ReadWeightHistory(reader, experiment, *history) : ReadWeightHistory(reader, experiment);
    if (!periods.ok()) return periods.status();
    if (periods->size() > 1) {
      input.weight_periods = *std::move(periods);
    } else if (periods->size() == 1 && periods->front().weights.size() == input.arms.size()) {
      // One period: the weights the units were assigned with, which are not the current ones
      // once a promotion put the winner at 100%.
      for (size_t i = 0; i < input.arms.size(); ++i) input.arms[i].weight = periods->front().weights[i];
    }
  }
  return input;
}

}  // namespace

absl::StatusOr<AnalysisInput> ReadConfiguredExperiment(events::EventReader& reader,
                                                       const config::ExperimentConfig& experiment,
                                                       const std::string& unit, std::vector<MetricSpec> metrics,
                                                       int64_t since_us) {
  return Configure(reader, experiment,
                   ReadEventStore(reader, experiment.name, unit, std::move(metrics), experiment.attribution_window_us,
                                  since_us));
}

absl::StatusOr<AnalysisInput> ReadConfiguredExperiment(events::EventReader& reader, EventStoreFollower& follower,
                                                       const config::ExperimentConfig& experiment) {
  return Configure(reader, experiment, follower.Read(reader), &follower.weight_history());
}

absl::StatusOr<AnalysisInput> ReadConfiguredExperiment(const std::string& store_uri,
                                                       const config::ExperimentConfig& experiment,
                                                       const std::string& unit, std::vector<MetricSpec> metrics,
                                                       int64_t since_us) {
  ABGATE_ASSIGN_OR_RETURN(auto reader, events::OpenEventReader(store_uri));
  return ReadConfiguredExperiment(*reader, experiment, unit, std::move(metrics), since_us);
}

}  // namespace abgate::analysis
