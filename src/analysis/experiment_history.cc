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
#include "analysis/store_scan.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "sqlite/database.h"

namespace abgate::analysis {

namespace json = boost::json;
using internal::IsPostgres;
using internal::ScanPostgres;
using internal::ScanSqlite;

namespace {

std::string PgText(PGresult* r, int column) { return PQgetisnull(r, 0, column) ? std::string() : PQgetvalue(r, 0, column); }

// Rows of a query of `columns` text columns for one experiment, from either store.
absl::Status ScanRows(const std::string& uri, const char* sql, const std::string& experiment, const char* table,
                      int columns, const std::function<void(const std::vector<std::string>&)>& row) {
  std::vector<std::string> values(static_cast<size_t>(columns));
  if (IsPostgres(uri)) {
    return ScanPostgres(uri, sql, experiment, [&](PGresult* r) {
      for (int i = 0; i < columns; ++i) values[i] = PgText(r, i);
      row(values);
    });
  }
  return ScanSqlite(uri.substr(7), sql, experiment, table, /*missing_ok=*/true, [&](sqlite3_stmt* st) {
    for (int i = 0; i < columns; ++i) values[i] = sqlite::Text(st, i);
    row(values);
  });
}

absl::StatusOr<config::ExperimentConfig> ParseStored(const std::string& text, const std::string& what) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return absl::InvalidArgumentError(StrCat(what, ": not a JSON object"));
  v.as_object().erase("runtime");
  return config::ParseExperimentConfig(v, what);
}

}  // namespace

absl::StatusOr<std::optional<config::ExperimentConfig>> ReadStoredExperiment(const std::string& store_uri,
                                                                             const std::string& experiment) {
  std::string stored;
  ABGATE_RETURN_IF_ERROR(ScanRows(store_uri, "SELECT config FROM experiment_configs WHERE name = %s", experiment,
                                  "experiment_configs", 1, [&](const auto& row) { stored = row[0]; }));
  if (stored.empty()) return std::optional<config::ExperimentConfig>();
  ABGATE_ASSIGN_OR_RETURN(auto parsed, ParseStored(stored, StrCat("stored experiment ", experiment)));
  return std::optional<config::ExperimentConfig>(std::move(parsed));
}

absl::StatusOr<std::vector<WeightPeriod>> ReadWeightHistory(const std::string& store_uri,
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
  // gateway started from) was in force until then.
  std::vector<WeightPeriod> periods;
  auto add = [&](int64_t start_us, const std::string& text) {
    if (text.empty()) return;  // a deletion, or an action that names no config
    auto c = ParseStored(text, "audited config");
    if (!c.ok() || c->name != experiment.name) return;
    std::vector<double> w = weights_of(*c);
    if (!periods.empty() && periods.back().weights == w) return;
    periods.push_back({start_us, std::move(w)});
  };
  ABGATE_RETURN_IF_ERROR(ScanRows(store_uri, "SELECT ts, before, after FROM audit_log WHERE experiment = %s ORDER BY id",
                                  experiment.name, "audit_log", 3, [&](const auto& row) {
                                    if (periods.empty()) add(0, row[1]);
                                    add(std::strtoll(row[0].c_str(), nullptr, 10), row[2]);
                                  }));
  if (periods.empty()) periods.push_back({0, weights_of(experiment)});
  periods.front().start_us = 0;
  return periods;
}

absl::StatusOr<std::vector<MetricSpec>> ReadStoredMetrics(const std::string& store_uri, const std::string& experiment) {
  std::map<std::string, bool> binary;  // name → every value 0 or 1
  ABGATE_RETURN_IF_ERROR(ScanRows(
      store_uri,
      "SELECT metric, CASE WHEN min(value) >= 0 AND max(value) <= 1 AND sum(CASE WHEN value = 0 OR value = 1 THEN 0 "
      "ELSE 1 END) = 0 THEN 'binary' ELSE 'continuous' END FROM outcomes WHERE experiment = %s GROUP BY metric",
      experiment, "outcomes", 2, [&](const auto& row) { binary[row[0]] = row[1] == "binary"; }));
  std::vector<MetricSpec> out;
  for (const auto& [name, b] : binary) out.push_back({name, b ? MetricKind::kBinary : MetricKind::kContinuous});
  return out;
}

}  // namespace abgate::analysis
