// ReadHoldout: every exposure with a unit id and every outcome in scope, one pass over each table
// through events::EventReader::ScanPopulation (the holdout compares whole populations across
// experiments, so it reads rows, not one experiment's event blocks). Ids are reduced to
// common::Hash64 keys as the event blocks do.
#include <algorithm>
#include <cstdlib>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "analysis/holdout.h"
#include "common/hash64.h"
#include "common/strings.h"
#include "common/status_macros.h"
#include "events/event_reader.h"

namespace abgate::analysis {
namespace {

struct Unit {
  int64_t first_ts = std::numeric_limits<int64_t>::max();
  bool holdout = false;
  bool rest = false;
};

struct PendingOutcome {
  uint32_t unit;
  uint32_t metric;  // index into the names met
  int64_t ts;
  double value;
  uint64_t event;  // Hash64 of the client's event_id, 0 without one
};

}  // namespace

absl::StatusOr<AnalysisInput> ReadHoldout(events::EventReader& reader, const HoldoutOptions& options) {
  absl::flat_hash_map<uint64_t, uint32_t> unit_index, request_unit;
  std::vector<Unit> units;
  std::vector<int64_t> exposures(2, 0);  // holdout, everyone else
  auto exposure = [&](const events::UnitExposure& e) {
    auto [it, inserted] = unit_index.try_emplace(common::Hash64(e.unit_id), static_cast<uint32_t>(units.size()));
    if (inserted) units.emplace_back();
    Unit& u = units[it->second];
    u.first_ts = std::min(u.first_ts, e.ts_us);
    (e.holdout ? u.holdout : u.rest) = true;
    ++exposures[e.holdout ? 0 : 1];
    if (!e.request_id.empty()) request_unit.try_emplace(common::Hash64(e.request_id), it->second);
  };
  // Outcomes, by request id when it names an exposed request, else by unit id.
  std::vector<std::string> names;
  for (const auto& m : options.metrics) names.push_back(m.name);
  const bool discover = options.metrics.empty();
  std::vector<bool> binary(names.size(), true);
  std::vector<PendingOutcome> pending;
  OutcomeCounts counts;
  auto outcome = [&](const events::OutcomeRecord& o) {
    auto name = std::find(names.begin(), names.end(), o.metric);
    if (name == names.end()) {
      if (!discover) return;
      names.emplace_back(o.metric);
      binary.push_back(true);
      name = names.end() - 1;
    }
    const auto m = static_cast<uint32_t>(name - names.begin());
    if (o.value != 0 && o.value != 1) binary[m] = false;
    uint32_t u = std::numeric_limits<uint32_t>::max();
    if (!o.request_id.empty()) {
      if (auto it = request_unit.find(common::Hash64(o.request_id)); it != request_unit.end()) u = it->second;
    }
    if (u == std::numeric_limits<uint32_t>::max() && !o.unit_id.empty()) {
      if (auto it = unit_index.find(common::Hash64(o.unit_id)); it != unit_index.end()) u = it->second;
    }
    if (u == std::numeric_limits<uint32_t>::max()) {
      ++counts.unknown_unit;
      return;
    }
    pending.push_back({u, m, o.ts_us, o.value, o.event_id.empty() ? 0 : common::Hash64(o.event_id)});
  };
  // Exposures come first (events::EventReader::ScanPopulation), so every outcome finds its unit.
  ABGATE_RETURN_IF_ERROR(reader.ScanPopulation(options.experiment, exposure, outcome));
  if (exposures[0] == 0) {
    const std::string scope =
        options.experiment.empty() ? std::string("any experiment") : StrCat("experiment '", options.experiment, "'");
    return absl::NotFoundError(StrCat("no held-out exposures in ", scope, " of ", reader.uri(),
                                      " (is holdout.percent set in the gateway's config?)"));
  }

  AnalysisInput input;
  input.experiment = options.experiment.empty() ? "all experiments" : options.experiment;
  input.unit = "user";
  const double percent = options.percent;
  input.arms = {ArmInfo{kHoldoutArm, "", percent, exposures[0], {}},
                ArmInfo{kEveryoneElseArm, "", percent > 0 ? 100 - percent : 0, exposures[1], {}}};
  input.weights_known = percent > 0;
  input.control = 0;
  if (discover) {
    for (size_t m = 0; m < names.size(); ++m) {
      input.metrics.emplace_back(names[m], binary[m] ? MetricKind::kBinary : MetricKind::kContinuous);
    }
    if (input.metrics.empty()) input.metrics.emplace_back("booked", MetricKind::kBinary);
  } else {
    input.metrics = options.metrics;
    for (auto& m : input.metrics) m.cuped_covariate.clear();
  }
  // Across experiments one real outcome is often posted once per experiment the unit is in (a
  // booking reported to each test). Summed per unit, it would count once for a held-out unit
  // (in no experiment) and several times for everyone else: a bias in the rest's favour. The
  // same event is recognised by its event_id, else by the same unit, metric, time and value.
  if (options.experiment.empty()) {
    auto key = [](const PendingOutcome& o) {
      return o.event ? std::make_tuple(o.unit, o.metric, int64_t{0}, 0.0, o.event)
                     : std::make_tuple(o.unit, o.metric, o.ts, o.value, uint64_t{0});
    };
    std::sort(pending.begin(), pending.end(), [&](const auto& a, const auto& b) { return key(a) < key(b); });
    const size_t before = pending.size();
    pending.erase(std::unique(pending.begin(), pending.end(), [&](const auto& a, const auto& b) { return key(a) == key(b); }),
                  pending.end());
    counts.duplicates = static_cast<int64_t>(before - pending.size());
  }
  const size_t k = input.metrics.size();
  std::vector<double> values(units.size() * k, 0.0);
  for (const PendingOutcome& o : pending) {
    const Unit& u = units[o.unit];
    if (o.ts < u.first_ts) {
      ++counts.before_exposure;
      continue;
    }
    if (options.attribution_window_us > 0 && o.ts > u.first_ts + options.attribution_window_us) {
      ++counts.after_window;
      continue;
    }
    ++counts.attributed;
    double& v = values[o.unit * k + o.metric];
    v = input.metrics[o.metric].kind == MetricKind::kBinary ? std::max(v, o.value > 0 ? 1.0 : 0.0) : v + o.value;
  }
  for (size_t i = 0; i < units.size(); ++i) {
    const Unit& u = units[i];
    if (u.holdout && u.rest) {
      ++input.multiple_exposure_units;
      continue;
    }
    input.units.push_back({u.holdout ? 0 : 1, u.first_ts,
                           absl::InlinedVector<double, 4>(values.begin() + static_cast<ptrdiff_t>(i * k),
                                                          values.begin() + static_cast<ptrdiff_t>((i + 1) * k))});
  }
  input.outcomes = counts;
  return input;
}

absl::StatusOr<AnalysisInput> ReadHoldout(const std::string& store_uri, const HoldoutOptions& options) {
  ABGATE_ASSIGN_OR_RETURN(auto reader, events::OpenEventReader(store_uri));
  return ReadHoldout(*reader, options);
}

}  // namespace abgate::analysis
