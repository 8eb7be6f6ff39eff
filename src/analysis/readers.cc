// Builders of AnalysisInput: the seed's ab_results.csv and the event store.
#include <libpq-fe.h>
#include <sqlite3.h>

#include <algorithm>
#include <cstdio>
#include <future>
#include <charconv>
#include <cmath>
#include <fstream>
#include <map>
#include <unordered_map>

#include <boost/json.hpp>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/hash/hash.h"
#include "analysis/analysis.h"
#include "common/csv.h"
#include "common/strings.h"

namespace abgate::analysis {
namespace {

// Orders versions numerically when both are numbers ("7" < "10"), else as text.
bool VersionLess(const std::string& a, const std::string& b) {
  double x, y;
  if (common::ParseFiniteDouble(a, x) && common::ParseFiniteDouble(b, y)) return x < y;
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

  std::vector<std::string> versions;
  for (const auto& r : rows) {
    if (std::find(versions.begin(), versions.end(), r.version) == versions.end()) versions.push_back(r.version);
  }
  std::sort(versions.begin(), versions.end(), VersionLess);
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
    const int arm = static_cast<int>(std::find(versions.begin(), versions.end(), r.version) - versions.begin());
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

namespace {

class Db {
 public:
  ~Db() { sqlite3_close(db_); }
  absl::Status Open(const std::string& path) {
    // One connection per thread, so SQLite's own per-call mutex is not needed.
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
      return absl::NotFoundError(StrCat("cannot open event store ", path, ": ", db_ ? sqlite3_errmsg(db_) : "?"));
    }
    return absl::OkStatus();
  }
  bool HasTable(const char* name) {
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db_, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", -1, &st, nullptr);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    const bool found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return found;
  }
  sqlite3* get() { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace

namespace {

// Units and requests are keyed by a 64-bit hash of their id: the maps hold no strings, so a
// lookup costs one cache miss instead of two (the key compare no longer chases a pointer),
// which is most of the time on 10M rows. Two of 2M ids collide with probability ~1e-7.
uint64_t KeyOf(std::string_view id) { return absl::Hash<absl::string_view>{}(absl::string_view(id.data(), id.size())); }

std::string_view ColumnView(sqlite3_stmt* st, int i) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st, i));
  return p ? std::string_view(p, sqlite3_column_bytes(st, i)) : std::string_view();
}

// Rows are handled in blocks: hash every key of the block and prefetch its slot first, so the
// cache misses of a block overlap instead of costing one full memory latency per row (the
// probes were most of the time on 10M-row stores).
constexpr size_t kBlock = 64;

// One outcome row, keyed by KeyOf(request id) or KeyOf(unit id).
struct OutcomeRow {
  uint64_t key;
  int64_t ts;
  uint32_t metric;
  bool by_request;
  double value;
};

struct OutcomeRows {
  std::vector<OutcomeRow> rows;
  bool any_by_request = false;
  absl::Status status;
};

// One exposure or outcome row as a store returns it; an empty view stands for NULL. Views are
// valid during the callback only.
struct ExposureFields {
  std::string_view request_id, unit_id, arm, model_version;
  int64_t ts = 0;
  bool scored = false;
  double score = 0;
};
struct OutcomeFields {
  std::string_view request_id, unit_id, metric;
  double value = 0;
  int64_t ts = 0;
};

constexpr const char* kExposureColumns =
    "SELECT request_id, ts, unit_id, assigned_arm, model_version, score FROM exposures "
    "WHERE experiment = %s AND in_experiment = 1";
constexpr const char* kOutcomeColumns = "SELECT request_id, unit_id, metric, value, ts FROM outcomes WHERE experiment = %s";

bool IsPostgres(const std::string& uri) { return uri.starts_with("postgresql://") || uri.starts_with("postgres://"); }

// Streams the rows of `sql_template` (with the experiment as its one parameter) to `row`.
// SQLite: `missing_table` names a table whose absence is not an error (no rows).
absl::Status ScanSqlite(const std::string& path, const char* sql_template, const std::string& experiment,
                        const char* table, bool missing_ok, absl::FunctionRef<void(sqlite3_stmt*)> row) {
  Db db;
  if (auto s = db.Open(path); !s.ok()) return s;
  if (!db.HasTable(table)) {
    return missing_ok ? absl::OkStatus() : absl::FailedPreconditionError(StrCat(path, " has no ", table, " table"));
  }
  char sql[512];
  std::snprintf(sql, sizeof(sql), sql_template, "?");
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db.get(), sql, -1, &st, nullptr) != SQLITE_OK) {
    return absl::InternalError(StrCat("sqlite: ", sqlite3_errmsg(db.get())));
  }
  sqlite3_bind_text(st, 1, experiment.c_str(), -1, SQLITE_TRANSIENT);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) row(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return absl::InternalError(StrCat("sqlite: ", sqlite3_errmsg(db.get())));
  return absl::OkStatus();
}

// PostgreSQL: the query runs in libpq's single-row mode, so 10M rows stream without being
// held in one result set.
absl::Status ScanPostgres(const std::string& uri, const char* sql_template, const std::string& experiment,
                          absl::FunctionRef<void(PGresult*)> row) {
  PGconn* c = PQconnectdb(uri.c_str());
  auto fail = [&](std::string_view what) {
    std::string msg = PQerrorMessage(c);
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    PQfinish(c);
    return absl::UnavailableError(StrCat("postgresql ", what, ": ", msg));
  };
  if (PQstatus(c) != CONNECTION_OK) return fail("connect");
  char sql[512];
  std::snprintf(sql, sizeof(sql), sql_template, "$1");
  const char* params[] = {experiment.c_str()};
  if (PQsendQueryParams(c, sql, 1, nullptr, params, nullptr, nullptr, 0) != 1) return fail("query");
  PQsetSingleRowMode(c);
  absl::Status status;
  while (PGresult* r = PQgetResult(c)) {
    const auto s = PQresultStatus(r);
    if (s == PGRES_SINGLE_TUPLE) {
      row(r);
    } else if (s != PGRES_TUPLES_OK && status.ok()) {
      status = absl::UnavailableError(StrCat("postgresql query: ", PQresultErrorMessage(r)));
    }
    PQclear(r);
  }
  PQfinish(c);
  return status;
}

std::string_view PgView(PGresult* r, int column) {
  return PQgetisnull(r, 0, column) ? std::string_view() : std::string_view(PQgetvalue(r, 0, column), PQgetlength(r, 0, column));
}

absl::Status ScanExposures(const std::string& uri, const std::string& experiment,
                           absl::FunctionRef<void(const ExposureFields&)> fn) {
  if (IsPostgres(uri)) {
    return ScanPostgres(uri, kExposureColumns, experiment, [&](PGresult* r) {
      ExposureFields f{PgView(r, 0), PgView(r, 2), PgView(r, 3), PgView(r, 4), std::atoll(PQgetvalue(r, 0, 1)),
                       !PQgetisnull(r, 0, 5), PQgetisnull(r, 0, 5) ? 0.0 : std::strtod(PQgetvalue(r, 0, 5), nullptr)};
      fn(f);
    });
  }
  return ScanSqlite(uri.substr(7), kExposureColumns, experiment, "exposures", false, [&](sqlite3_stmt* st) {
    const bool scored = sqlite3_column_type(st, 5) != SQLITE_NULL;
    ExposureFields f{ColumnView(st, 0), ColumnView(st, 2), ColumnView(st, 3), ColumnView(st, 4),
                     sqlite3_column_int64(st, 1), scored, scored ? sqlite3_column_double(st, 5) : 0.0};
    fn(f);
  });
}

absl::Status ScanOutcomes(const std::string& uri, const std::string& experiment,
                          absl::FunctionRef<void(const OutcomeFields&)> fn) {
  if (IsPostgres(uri)) {
    return ScanPostgres(uri, kOutcomeColumns, experiment, [&](PGresult* r) {
      OutcomeFields f{PgView(r, 0), PgView(r, 1), PgView(r, 2), std::strtod(PQgetvalue(r, 0, 3), nullptr),
                      std::atoll(PQgetvalue(r, 0, 4))};
      fn(f);
    });
  }
  return ScanSqlite(uri.substr(7), kOutcomeColumns, experiment, "outcomes", true, [&](sqlite3_stmt* st) {
    OutcomeFields f{ColumnView(st, 0), ColumnView(st, 1), ColumnView(st, 2), sqlite3_column_double(st, 3),
                    sqlite3_column_int64(st, 4)};
    fn(f);
  });
}

// Rows in the exposures table (an estimate is enough), to size the maps once instead of
// rehashing them while they grow. 0 when unknown.
int64_t EstimateExposureRows(const std::string& uri) {
  if (IsPostgres(uri)) {
    PGconn* c = PQconnectdb(uri.c_str());
    int64_t n = 0;
    if (PQstatus(c) == CONNECTION_OK) {
      PGresult* r = PQexec(c, "SELECT reltuples::bigint FROM pg_class WHERE relname = 'exposures'");
      if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) n = std::atoll(PQgetvalue(r, 0, 0));
      PQclear(r);
    }
    PQfinish(c);
    return std::max<int64_t>(n, 0);
  }
  Db db;
  if (!db.Open(uri.substr(7)).ok() || !db.HasTable("exposures")) return 0;
  sqlite3_stmt* st = nullptr;
  int64_t n = 0;
  if (sqlite3_prepare_v2(db.get(), "SELECT max(rowid) FROM exposures", -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    n = sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  return n;
}

OutcomeRows ReadOutcomes(const std::string& uri, const std::string& experiment, const std::vector<MetricSpec>& metrics,
                         int64_t since_us) {
  OutcomeRows out;
  const size_t m = metrics.size();
  out.status = ScanOutcomes(uri, experiment, [&](const OutcomeFields& f) {
    if (f.ts < since_us) return;
    size_t j = 0;
    while (j < m && metrics[j].name != f.metric) ++j;
    if (j == m) return;
    const bool by_request = !f.request_id.empty();
    if (!by_request && f.unit_id.empty()) return;
    out.any_by_request |= by_request;
    out.rows.push_back({KeyOf(by_request ? f.request_id : f.unit_id), f.ts, static_cast<uint32_t>(j), by_request, f.value});
  });
  return out;
}

}  // namespace

absl::StatusOr<AnalysisInput> ReadEventStore(const std::string& store_uri, const std::string& experiment,
                                             const std::string& unit, std::vector<MetricSpec> metrics,
                                             int64_t attribution_window_us, int64_t since_us) {
  if (!store_uri.starts_with("sqlite:") && !IsPostgres(store_uri)) {
    return absl::InvalidArgumentError(
        StrCat("unsupported event store '", store_uri, "' (use sqlite:PATH or postgresql://...)"));
  }
  if (unit != "user" && unit != "request") return absl::InvalidArgumentError("unit must be user or request");
  AnalysisInput input;
  input.experiment = experiment;
  input.unit = unit;
  input.metrics = std::move(metrics);

  // Outcomes are read on a second thread and connection while this one scans the exposures
  // (two cores, two table scans); attribution happens once both are in memory.
  auto outcomes_future = std::async(std::launch::async, ReadOutcomes, store_uri, experiment, input.metrics, since_us);

  // Exposures: the assigned arm (intent to treat: a fallback served by control still counts
  // for the arm it was assigned to). No ORDER BY: sorting 10M rows costs more than the scan;
  // the earliest exposure is tracked per unit instead.
  absl::flat_hash_map<uint64_t, uint32_t> user_units;     // KeyOf(unit id) → units[]
  absl::flat_hash_map<uint64_t, uint32_t> request_units;  // KeyOf(request id) → units[] (request-level units)
  struct Request {
    uint64_t key;   // KeyOf(request id)
    uint32_t unit;
    bool scored;
    double score;
  };
  std::vector<Request> requests;
  std::vector<bool> multi;
  const size_t hint = static_cast<size_t>(std::clamp<int64_t>(EstimateExposureRows(store_uri), 0, 200'000'000));
  requests.reserve(hint);
  user_units.reserve(std::min<size_t>(hint, 50'000'000) / 4);
  struct Row {
    uint64_t key;          // the unit's key (user id, or request id for request-level units)
    uint64_t request_key;  // KeyOf(request id)
    int64_t ts;
    int arm;
    bool by_request;
    bool scored;
    double score;
  };
  std::vector<Row> block;
  block.reserve(kBlock);
  auto flush = [&] {
    for (const Row& r : block) (r.by_request ? request_units : user_units).prefetch(r.key);
    for (const Row& r : block) {
      auto& index = r.by_request ? request_units : user_units;
      auto [it, inserted] = index.try_emplace(r.key, static_cast<uint32_t>(input.units.size()));
      if (inserted) {
        input.units.push_back({r.arm, r.ts, absl::InlinedVector<double, 4>(input.metrics.size(), 0.0)});
        multi.push_back(false);
      } else {
        auto& u = input.units[it->second];
        if (u.arm != r.arm) multi[it->second] = true;
        u.first_ts_us = std::min(u.first_ts_us, r.ts);
      }
      requests.push_back({r.request_key, it->second, r.scored, r.score});
    }
    block.clear();
  };
  const absl::Status scanned = ScanExposures(store_uri, experiment, [&](const ExposureFields& f) {
    if (f.ts < since_us) return;
    int arm = 0;
    while (arm < static_cast<int>(input.arms.size()) && input.arms[arm].name != f.arm) ++arm;
    if (arm == static_cast<int>(input.arms.size())) {
      input.arms.push_back({std::string(f.arm), std::string(f.model_version), 0, 0});
    }
    input.arms[arm].exposures++;
    // Request-level analysis, and units without an id, use the request as the unit.
    const bool by_request = unit == "request" || f.unit_id.empty();
    const uint64_t request_key = KeyOf(f.request_id);
    block.push_back({by_request ? request_key : KeyOf(f.unit_id), request_key, f.ts, arm, by_request, f.scored, f.score});
    if (block.size() == kBlock) flush();
  });
  flush();
  if (!scanned.ok()) return scanned;
  // Arms in name order, whatever order the scan met them in, so reports are deterministic.
  {
    std::vector<int> order(input.arms.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
    std::sort(order.begin(), order.end(), [&](int a, int b) { return input.arms[a].name < input.arms[b].name; });
    std::vector<int> new_index(order.size());
    std::vector<ArmInfo> sorted;
    for (size_t i = 0; i < order.size(); ++i) {
      new_index[order[i]] = static_cast<int>(i);
      sorted.push_back(input.arms[order[i]]);
    }
    input.arms = std::move(sorted);
    for (auto& u : input.units) u.arm = new_index[u.arm];
  }
  OutcomeRows outcomes = outcomes_future.get();
  if (!outcomes.status.ok()) return outcomes.status;
  if (input.units.empty()) return absl::NotFoundError(StrCat("no exposures for experiment '", experiment, "' in ", store_uri));

  // Attribution: an outcome counts for its unit (found by request id, else by unit id) when it
  // falls in [first exposure, first exposure + window]; otherwise it is kept in the store and
  // counted as unattributed here.
  AnalysisInput::OutcomeCounts counts;
  std::vector<double> request_label(requests.size(), -1);
  absl::flat_hash_map<uint64_t, uint32_t> request_index;  // KeyOf(request id) → requests[]
  if (outcomes.any_by_request) {
    request_index.reserve(requests.size());
    for (size_t i = 0; i < requests.size(); ++i) request_index.emplace(requests[i].key, static_cast<uint32_t>(i));
  }
  auto attribute = [&](const OutcomeRow& o, int64_t request) {
    // request >= 0: the outcome's request; its unit is requests[request].unit.
    uint32_t u;
    if (request >= 0) {
      u = requests[request].unit;
    } else {
      auto it = user_units.find(o.key);
      if (it == user_units.end() || unit != "user") {
        ++counts.unknown_unit;
        return;
      }
      u = it->second;
    }
    const int64_t first = input.units[u].first_ts_us;
    if (o.ts < first) {
      ++counts.before_exposure;
      return;
    }
    if (attribution_window_us > 0 && o.ts > first + attribution_window_us) {
      ++counts.after_window;
      return;
    }
    ++counts.attributed;
    double& v = input.units[u].values[o.metric];
    v = input.metrics[o.metric].kind == MetricKind::kBinary ? std::max(v, o.value > 0 ? 1.0 : 0.0) : v + o.value;
    if (request >= 0 && o.metric == 0) request_label[request] = std::max(request_label[request], o.value > 0 ? 1.0 : 0.0);
  };
  for (size_t start = 0; start < outcomes.rows.size(); start += kBlock) {
    const size_t end = std::min(outcomes.rows.size(), start + kBlock);
    for (size_t i = start; i < end; ++i) {
      const auto& o = outcomes.rows[i];
      if (o.by_request) {
        request_index.prefetch(o.key);
      } else {
        user_units.prefetch(o.key);
      }
    }
    for (size_t i = start; i < end; ++i) {
      const auto& o = outcomes.rows[i];
      if (o.by_request) {
        auto it = request_index.find(o.key);
        if (it == request_index.end()) {
          ++counts.unknown_unit;
          continue;
        }
        attribute(o, it->second);
      } else {
        attribute(o, -1);
      }
    }
  }
  input.outcomes = counts;
  // Model quality: each scored request against its own label when outcomes carry request ids,
  // else against its unit's primary binary metric.
  if (input.metrics[0].kind == MetricKind::kBinary) {
    input.predictions.reserve(requests.size());
    std::vector<float> unit_label(input.units.size());  // contiguous: one load per prediction
    for (size_t u = 0; u < input.units.size(); ++u) unit_label[u] = static_cast<float>(input.units[u].values[0]);
    for (size_t i = 0; i < requests.size(); ++i) {
      const auto& r = requests[i];
      if (!r.scored || multi[r.unit]) continue;
      const double label = request_label[i] >= 0 ? request_label[i] : unit_label[r.unit];
      input.predictions.push_back({input.units[r.unit].arm, r.score, label > 0 ? 1 : 0});
    }
  }
  ExcludeMultiArmUnits(input, multi);
  return input;
}

std::vector<MetricSpec> MetricsOf(const config::ExperimentConfig& experiment) {
  std::vector<MetricSpec> metrics;
  for (const auto& m : experiment.metrics) {
    MetricSpec spec{m.name, m.type == config::MetricType::kBinary ? MetricKind::kBinary : MetricKind::kContinuous};
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

absl::StatusOr<std::optional<json::object>> ReadShadowSummary(const std::string& store_uri,
                                                              const std::string& experiment, int64_t since_us) {
  struct Row {
    std::optional<double> score, shadow_score;
    int64_t latency_us = 0, shadow_latency_us = 0;
    int status = 0;
    std::string arm, shadow_arm;
  };
  std::vector<Row> rows;
  constexpr const char* kSql =
      "SELECT score, shadow_score, latency_us, shadow_latency_us, shadow_status, arm, shadow_arm, ts FROM shadows "
      "WHERE experiment = %s";
  absl::Status s;
  if (IsPostgres(store_uri)) {
    s = ScanPostgres(store_uri, kSql, experiment, [&](PGresult* r) {
      if (std::atoll(PQgetvalue(r, 0, 7)) < since_us) return;
      Row row;
      if (!PQgetisnull(r, 0, 0)) row.score = std::strtod(PQgetvalue(r, 0, 0), nullptr);
      if (!PQgetisnull(r, 0, 1)) row.shadow_score = std::strtod(PQgetvalue(r, 0, 1), nullptr);
      row.latency_us = std::atoll(PQgetvalue(r, 0, 2));
      row.shadow_latency_us = std::atoll(PQgetvalue(r, 0, 3));
      row.status = std::atoi(PQgetvalue(r, 0, 4));
      row.arm = PQgetvalue(r, 0, 5);
      row.shadow_arm = PQgetvalue(r, 0, 6);
      rows.push_back(std::move(row));
    });
  } else {
    s = ScanSqlite(store_uri.substr(7), kSql, experiment, "shadows", true, [&](sqlite3_stmt* st) {
      if (sqlite3_column_int64(st, 7) < since_us) return;
      Row row;
      if (sqlite3_column_type(st, 0) != SQLITE_NULL) row.score = sqlite3_column_double(st, 0);
      if (sqlite3_column_type(st, 1) != SQLITE_NULL) row.shadow_score = sqlite3_column_double(st, 1);
      row.latency_us = sqlite3_column_int64(st, 2);
      row.shadow_latency_us = sqlite3_column_int64(st, 3);
      row.status = sqlite3_column_int(st, 4);
      row.arm = std::string(ColumnView(st, 5));
      row.shadow_arm = std::string(ColumnView(st, 6));
      rows.push_back(std::move(row));
    });
  }
  if (!s.ok()) return s;
  if (rows.empty()) return std::optional<json::object>();
  // Disagreement: the two scores on different sides of 0.5; correlation: Pearson's r.
  int64_t failed = 0, pairs = 0, disagree = 0;
  double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0, abs_diff = 0;
  std::vector<double> primary_ms, shadow_ms;
  for (const Row& r : rows) {
    primary_ms.push_back(r.latency_us / 1000.0);
    shadow_ms.push_back(r.shadow_latency_us / 1000.0);
    if (r.status >= 300 || !r.shadow_score) {
      ++failed;
      continue;
    }
    if (!r.score) continue;
    const double x = *r.score, y = *r.shadow_score;
    ++pairs;
    disagree += (x >= 0.5) != (y >= 0.5);
    sx += x;
    sy += y;
    sxx += x * x;
    syy += y * y;
    sxy += x * y;
    abs_diff += std::abs(x - y);
  }
  auto quantile = [](std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
  };
  auto mean = [](const std::vector<double>& v) {
    double t = 0;
    for (double x : v) t += x;
    return t / static_cast<double>(v.size());
  };
  json::object out{{"arm", rows[0].arm},
                   {"shadow_arm", rows[0].shadow_arm},
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
      {"primary", json::object{{"mean", mean(primary_ms)}, {"p50", quantile(primary_ms, 0.5)}, {"p99", quantile(primary_ms, 0.99)}}},
      {"shadow", json::object{{"mean", mean(shadow_ms)}, {"p50", quantile(shadow_ms, 0.5)}, {"p99", quantile(shadow_ms, 0.99)}}}};
  return std::optional<json::object>(std::move(out));
}

absl::StatusOr<AnalysisInput> ReadConfiguredExperiment(const std::string& store_uri,
                                                       const config::ExperimentConfig& experiment,
                                                       const std::string& unit, std::vector<MetricSpec> metrics,
                                                       int64_t since_us) {
  auto read = ReadEventStore(store_uri, experiment.name, unit, std::move(metrics), experiment.attribution_window_us,
                             since_us);
  if (!read.ok()) return read.status();
  AnalysisInput input = std::move(*read);
  std::vector<ArmInfo> arms;
  for (const auto& arm : experiment.arms) {
    ArmInfo info{arm.name, arm.version, arm.weight, 0};
    for (const auto& seen : input.arms) {
      if (seen.name == arm.name) info.exposures = seen.exposures;
    }
    arms.push_back(info);
  }
  auto config_index = [&](const std::string& name) {
    return static_cast<int>(std::find_if(arms.begin(), arms.end(), [&](const auto& x) { return x.name == name; }) -
                            arms.begin());
  };
  for (const auto& seen : input.arms) {
    if (config_index(seen.name) == static_cast<int>(arms.size())) {
      return absl::InvalidArgumentError(
          StrCat("the store has exposures for arm '", seen.name, "', which the config does not list"));
    }
  }
  std::vector<int> remap;
  for (const auto& seen : input.arms) remap.push_back(config_index(seen.name));
  for (auto& u : input.units) u.arm = remap[u.arm];
  for (auto& p : input.predictions) p.arm = remap[p.arm];
  input.arms = std::move(arms);
  input.control = experiment.ControlIndex();
  input.weights_known = experiment.ramp.empty();  // with a ramp, weights changed over time
  return input;
}

}  // namespace abgate::analysis
