// The global holdout's analysis (`abgate analyze --holdout`): the units held out of every
// experiment (their exposures flagged routing_mode "holdout"; served by each experiment's control
// or default model) against everyone else who was exposed, per metric — the cumulative effect of
// everything launched since the holdout began. The reader builds an ordinary two-arm
// AnalysisInput (control "holdout", treatment "everyone_else"), so `Analyze` computes the rates,
// lift with its CI and p-values once; the renderers here show that report as a holdout
// comparison (no launch decision: the holdout never promotes anything). Thread-compatible values;
// the reader blocks on the store.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "absl/status/statusor.h"
#include "analysis/analysis.h"
#include "analysis/report.h"

namespace abgate::analysis {

inline constexpr char kHoldoutArm[] = "holdout";
inline constexpr char kEveryoneElseArm[] = "everyone_else";

struct HoldoutOptions {
  std::string experiment{};  // empty: every experiment in the store
  // The metrics to compare; empty: every metric the store has outcomes for in scope (binary
  // when every value is 0 or 1), by name.
  std::vector<MetricSpec> metrics{};
  double percent = 0;  // the configured holdout (holdout.percent), for the SRM check; 0: unknown
  int64_t attribution_window_us = 0;  // outcomes later than this after a unit's first exposure are left out; 0: none
};

// Reads the exposures (with a unit id) and outcomes in scope from the event store (sqlite:PATH or
// postgresql://…). A unit is in the holdout when any of its exposures is flagged "holdout", else
// in everyone_else; a unit in both (the holdout's percent changed) is counted and left out.
// Outcomes count from the unit's first exposure in scope on, attributed by request id, else by
// unit id; a binary metric is 1 for a unit with any positive outcome, a continuous one sums.
// NotFound when no exposure in scope is held out. The URI form opens the store's reader
// (events::OpenEventReader: InvalidArgument for an unsupported URI) for the one call.
absl::StatusOr<AnalysisInput> ReadHoldout(events::EventReader& reader, const HoldoutOptions& options);
absl::StatusOr<AnalysisInput> ReadHoldout(const std::string& store_uri, const HoldoutOptions& options);

// `abgate analyze --holdout --format json`: scope, groups (units, exposures), per metric each
// group's mean with its CI and the comparison (diff, lift with CI, p, always-valid p), SRM
// against the configured percent, units in both groups, outcome counts.
boost::json::object HoldoutToJson(const Report& report, const std::string& scope, double percent);
// The same for people (numbers rounded to at most 4 significant digits).
std::string RenderHoldoutText(const Report& report, const std::string& scope, double percent);

}  // namespace abgate::analysis
