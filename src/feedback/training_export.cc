#include "feedback/training_export.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <optional>
#include <set>

#include <boost/json.hpp>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "analysis/analysis.h"
#include "common/hash64.h"
#include "common/human.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "config/json_format.h"
#include "events/event_reader.h"
#include "serving/mlflow_model.h"
#include "serving/predictor.h"
#include "serving/scoring_input.h"

namespace abgate::feedback {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// One output row before writing (features are resolved to the final column order at the end).
struct Row {
  const events::ServedRequest* request;
  int instance = 0;
  int rank = 0;
  double prediction = kNaN;
  double probability = kNaN;
  std::vector<std::pair<int, float>> features;  // (feature column, value)
  const analysis::RequestLabels* labels;
};

std::string FormatNumber(double v) {
  if (std::isnan(v)) return "";
  char buf[32];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, p) : "";
}

std::string FormatFloat(float v) {
  if (std::isnan(v)) return "";
  char buf[32];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);  // shortest round-trip of the float32 the model saw
  return ec == std::errc() ? std::string(buf, p) : "";
}

std::string CsvField(std::string_view s) {
  if (s.find_first_of(",\"\n\r#") == std::string_view::npos) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// Column names a payload names itself (dataframe_split columns, the keys of the first record
// or instance), for a model without a signature.
std::vector<serving::ColumnSpec> ColumnsFromPayload(std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  std::vector<serving::ColumnSpec> out;
  if (ec || !v.is_object()) return out;
  const json::object& o = v.as_object();
  auto add = [&](std::string_view name) { out.push_back({std::string(name), "double", true}); };
  if (const json::value* split = o.if_contains("dataframe_split"); split && split->is_object()) {
    if (const json::value* cols = split->as_object().if_contains("columns"); cols && cols->is_array()) {
      for (const auto& c : cols->as_array()) {
        if (c.is_string()) add(c.as_string());
      }
    }
  }
  for (const char* key : {"dataframe_records", "instances", "inputs"}) {
    const json::value* list = o.if_contains(key);
    if (!list) continue;
    if (list->is_array() && !list->as_array().empty() && list->as_array()[0].is_object()) {
      for (const auto& [k, _] : list->as_array()[0].as_object()) add(k);
    } else if (list->is_object()) {  // inputs as {"column": [values]}
      for (const auto& [k, _] : list->as_object()) add(k);
    }
  }
  return out;
}

// The predictions of a stored reply: MLflow's {"predictions": [...]} or a bare list; one number
// per instance (a list or an object per instance gives its first number).
std::vector<double> PredictionsOf(std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  std::vector<double> out;
  if (ec) return out;
  const json::value* list = &v;
  if (v.is_object()) list = v.as_object().if_contains("predictions");
  if (!list || !list->is_array()) return out;
  for (const auto& p : list->as_array()) {
    const json::value* x = &p;
    if (p.is_array() && !p.as_array().empty()) x = &p.as_array()[0];
    out.push_back(x->is_number() ? x->to_number<double>() : kNaN);
  }
  return out;
}

double ParseDouble(const std::string& s) {
  double v = kNaN;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() ? v : kNaN;
}

std::string Join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) StrAppend(&out, i ? sep : std::string_view(), parts[i]);
  return out;
}

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

const std::vector<std::string>& ExportMetaColumns() {
  static const auto* columns = new std::vector<std::string>{
      "request_id", "ts_us",         "unit_id",   "arm",        "assigned_arm",           "model_name",
      "model_version", "routing_mode", "instance", "rank",      "prediction", "assignment_probability",
      "label_source"};
  return *columns;
}

json::object ExportSummary::ToJson() const {
  json::array f, l;
  for (const auto& x : features) f.push_back(json::value(x));
  for (const auto& x : labels) l.push_back(json::value(x));
  json::object by_arm;
  for (const auto& [arm, n] : rows_by_arm) by_arm[arm] = n;
  return json::object{{"experiment", experiment},
                      {"store", store},
                      {"since_us", since_us},
                      {"first_ts_us", first_ts_us},
                      {"last_ts_us", last_ts_us},
                      {"created_us", created_us},
                      {"exposures", exposures},
                      {"sampled", sampled},
                      {"unsampled", unsampled},
                      {"left_out_multiple_arm_units", multiple_arm_units},
                      {"left_out_maturing", maturing},
                      {"unreadable_payloads", unreadable},
                      {"first_unreadable", first_unreadable},
                      {"requests_written", requests_written},
                      {"rows", rows},
                      {"labelled_rows", labelled_rows},
                      {"rows_by_arm", std::move(by_arm)},
                      {"features", std::move(f)},
                      {"labels", std::move(l)},
                      {"assignment_probability_source", assignment_probability_source}};
}

absl::StatusOr<ExportSummary> ExportTrainingData(const ExportOptions& o) {
  if (o.store.empty() || o.experiment.empty() || o.output.empty()) {
    return absl::InvalidArgumentError("the store, the experiment and the output file are required");
  }
  std::error_code ec;
  if (!o.overwrite && fs::exists(fs::symlink_status(o.output, ec))) {
    return absl::AlreadyExistsError(StrCat(o.output, " exists (choose a new file, or --force to replace it)"));
  }
  ExportSummary sum;
  sum.experiment = o.experiment;
  sum.store = o.store;
  sum.since_us = o.since_us;
  sum.created_us = NowUs();

  ABGATE_ASSIGN_OR_RETURN(std::unique_ptr<events::EventReader> reader, events::OpenEventReader(o.store));
  // 1. The experiment as it ran: config (metrics, window, unit, arms and weights).
  std::optional<config::ExperimentConfig> exp = o.experiment_config;
  if (!exp) {
    ABGATE_ASSIGN_OR_RETURN(exp, analysis::ReadStoredExperiment(*reader, o.experiment));
  }
  std::vector<analysis::MetricSpec> metrics;
  if (exp && !exp->metrics.empty()) metrics = analysis::MetricsOf(*exp);
  ABGATE_ASSIGN_OR_RETURN(auto stored_metrics, analysis::ReadStoredMetrics(*reader, o.experiment));
  for (const auto& m : stored_metrics) {
    if (std::none_of(metrics.begin(), metrics.end(), [&](const auto& x) { return x.name == m.name; })) metrics.push_back(m);
  }
  if (metrics.empty()) metrics.push_back({"booked", analysis::MetricKind::kBinary});
  const bool per_request = exp && exp->routing_mode == config::RoutingMode::kRequestRandom;
  const int64_t window_us = exp ? exp->attribution_window_us : 0;

  // 2. The served requests, with their payloads where sampled.
  std::vector<events::ServedRequest> served;
  int64_t stored_probabilities = 0;
  ABGATE_RETURN_IF_ERROR(reader->ReadServedRequests(o.experiment, o.since_us, [&](const events::ServedRequest& r) {
    if (!o.arm.empty() && r.arm != o.arm) return;
    ++sum.exposures;
    if (!r.sampled) {
      ++sum.unsampled;
      return;
    }
    ++sum.sampled;
    stored_probabilities += r.assignment_probability.has_value();
    served.push_back(r);
  }));
  // 3. Weights in force over time, for the assignment probability.
  std::vector<analysis::WeightPeriod> periods;
  if (exp) {
    ABGATE_ASSIGN_OR_RETURN(periods, analysis::ReadWeightHistory(*reader, *exp));
  }
  const std::string from_weights =
      exp ? "the weight history: the assigned arm's share of the weights in force at the unit's first exposure (at the "
            "request for request_random)"
          : "unknown (no stored config): left empty";
  auto probability_from_weights = [&](const std::string& arm, int64_t ts_us) {
    if (!exp || periods.empty()) return kNaN;
    const analysis::WeightPeriod* in_force = &periods.front();
    for (const auto& p : periods) {
      if (p.start_us <= ts_us) in_force = &p;
    }
    double total = 0, mine = kNaN;
    for (size_t i = 0; i < exp->arms.size() && i < in_force->weights.size(); ++i) {
      total += in_force->weights[i];
      if (exp->arms[i].name == arm) mine = in_force->weights[i];
    }
    return total > 0 && !std::isnan(mine) ? mine / total : kNaN;
  };

  sum.assignment_probability_source =
      stored_probabilities == 0 ? from_weights
                                : StrCat("recorded by the gateway with each exposure (", stored_probabilities, " of ",
                                         sum.sampled, " sampled rows; the others: ", from_weights, ")");
  if (sum.exposures == 0) {
    return absl::NotFoundError(StrCat("no exposures of experiment '", o.experiment, "'",
                                      o.arm.empty() ? "" : StrCat(" served by arm ", o.arm), " in ", o.store,
                                      o.since_us > 0 ? StrCat(" since ", HumanUtc(o.since_us)) : ""));
  }
  if (sum.sampled == 0) {
    return absl::NotFoundError(StrCat(sum.exposures, " exposures of '", o.experiment,
                                      "' and none with a stored payload: set payload_sample_rate on the experiment"));
  }
  // 4. Labels of the sampled requests, attributed by the analysis' own reader.
  analysis::ReadTuning tuning;
  tuning.request_labels = true;
  absl::flat_hash_set<uint64_t> sampled_keys;
  sampled_keys.reserve(served.size());
  for (const auto& r : served) sampled_keys.insert(common::Hash64(r.request_id));
  tuning.label_requests = [&sampled_keys](uint64_t key) { return sampled_keys.contains(key); };
  ABGATE_ASSIGN_OR_RETURN(analysis::AnalysisInput input,
                          analysis::ReadEventStore(*reader, o.experiment, per_request ? "request" : "user", metrics,
                                                   window_us, o.since_us, tuning));
  for (const auto& m : input.metrics) sum.labels.push_back(m.name);
  absl::flat_hash_map<uint64_t, const analysis::RequestLabels*> labels;
  labels.reserve(input.request_labels.size());
  for (const auto& l : input.request_labels) labels.try_emplace(l.request_key, &l);

  std::sort(served.begin(), served.end(), [](const auto& a, const auto& b) {
    return a.ts_us != b.ts_us ? a.ts_us < b.ts_us : a.request_id < b.request_id;
  });

  // 5. Column names: the served version's signature (or --signature-from), else the payload's.
  const fs::path cache = o.model_cache_dir.empty() ? fs::temp_directory_path() / "abgate-export-models" : fs::path(o.model_cache_dir);
  std::map<std::string, std::vector<serving::ColumnSpec>> signatures;  // "name/version" → columns
  auto signature_of = [&](const events::ServedRequest& r) -> absl::StatusOr<const std::vector<serving::ColumnSpec>*> {
    const std::string key = o.signature_from.empty() ? StrCat(r.model_name, "/", r.model_version) : "";
    if (auto it = signatures.find(key); it != signatures.end()) return &it->second;
    std::vector<serving::ColumnSpec> columns;
    std::string uri = o.signature_from;
    if (uri.empty() && !o.registry_uri.empty() && !r.model_name.empty() && !r.model_version.empty()) {
      uri = StrCat("models:/", r.model_name, "/", r.model_version);
    }
    if (!uri.empty()) {
      auto folder = serving::ResolveModelFolder(uri, o.registry_uri, cache);
      if (!folder.ok()) {
        return absl::Status(folder.status().code(), StrCat("the signature of ", uri, ": ", folder.status().message()));
      }
      ABGATE_ASSIGN_OR_RETURN(serving::MlflowModel model, serving::ReadMlflowModel(*folder));
      columns = model.inputs;
    }
    return &signatures.emplace(key, std::move(columns)).first->second;
  };

  std::vector<std::string> feature_names;
  std::map<std::string, int> feature_index;
  const auto& meta = ExportMetaColumns();
  std::set<std::string> taken(meta.begin(), meta.end());
  for (const auto& l : sum.labels) taken.insert(l);
  std::vector<Row> rows;
  std::string first_error;
  const int64_t now_us = NowUs();
  for (const events::ServedRequest& r : served) {
    auto found = labels.find(common::Hash64(r.request_id));
    if (found == labels.end()) {  // not read by the analysis (cannot happen for an in-experiment row)
      ++sum.unreadable;
      continue;
    }
    const analysis::RequestLabels* l = found->second;
    if (l->multiple_arms) {
      ++sum.multiple_arm_units;
      continue;
    }
    if (analysis::IsMaturing(l->unit_first_ts_us, now_us, window_us)) {
      ++sum.maturing;
      continue;
    }
    ABGATE_ASSIGN_OR_RETURN(const std::vector<serving::ColumnSpec>* signature, signature_of(r));
    std::vector<serving::ColumnSpec> own;
    const std::vector<serving::ColumnSpec>* columns = signature;
    const bool is_json = r.request.find_first_not_of(" \t\r\n") != std::string::npos &&
                         r.request[r.request.find_first_not_of(" \t\r\n")] == '{';
    if (columns->empty() && is_json) {
      own = ColumnsFromPayload(r.request);
      columns = &own;
    }
    serving::ScoringResult parsed;
    if (r.truncated) {
      parsed.error = serving::ScoringError{400, "TRUNCATED", "the stored payload was cut at payload_max_bytes"};
    } else if (columns->empty() && !is_json) {
      parsed.error = serving::ScoringError{400, "NO_COLUMNS", "a CSV payload for a model without a signature"};
    } else if (columns->empty()) {
      parsed.error = serving::ScoringError{400, "NO_COLUMNS", "positional rows and no model signature to name them"};
    } else {
      const auto n = static_cast<int64_t>(columns->size());
      parsed = is_json ? serving::ParseJsonInput(r.request, *columns, n) : serving::ParseCsvInput(r.request, *columns, n);
      if (!parsed.ok() && is_json) {
        // Positional rows (instances / inputs as lists): MLflow's enforcement wants names, but
        // the signature's order names them.
        serving::ScoringResult positional = serving::ParseJsonInput(r.request, {}, n);
        if (positional.ok()) parsed = std::move(positional);
      }
    }
    if (!parsed.ok()) {
      if (first_error.empty()) first_error = StrCat("request ", r.request_id, ": ", parsed.error->message.substr(0, 200));
      ++sum.unreadable;
      continue;
    }
    std::vector<int> column_of;
    for (const auto& c : *columns) {
      auto [it, inserted] = feature_index.try_emplace(c.name, static_cast<int>(feature_names.size()));
      if (inserted) {
        if (taken.contains(c.name)) {
          return absl::InvalidArgumentError(
              StrCat("the model's input column '", c.name, "' has the name of an export column or a metric"));
        }
        feature_names.push_back(c.name);
      }
      column_of.push_back(it->second);
    }
    std::vector<double> predictions = PredictionsOf(r.response);
    const serving::Matrix& m = parsed.matrix;
    predictions.resize(static_cast<size_t>(m.rows), kNaN);
    if (m.rows > 0 && std::isnan(predictions[0]) && r.score) predictions[0] = *r.score;
    // Rank within the request: 1 = the highest prediction (the item a ranking shows first).
    std::vector<int> order(static_cast<size_t>(m.rows));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
      const double x = predictions[a], y = predictions[b];
      if (std::isnan(x) || std::isnan(y)) return !std::isnan(x) && std::isnan(y);
      return x > y;
    });
    std::vector<int> rank(static_cast<size_t>(m.rows));
    for (size_t i = 0; i < order.size(); ++i) rank[order[i]] = static_cast<int>(i) + 1;
    double probability = r.assignment_probability.value_or(kNaN);
    if (std::isnan(probability)) probability = probability_from_weights(r.assigned_arm, per_request ? r.ts_us : l->unit_first_ts_us);
    for (int64_t i = 0; i < m.rows; ++i) {
      Row row{&r, static_cast<int>(i), rank[i], predictions[i], probability, {}, l};
      for (int64_t j = 0; j < m.cols; ++j) row.features.emplace_back(column_of[j], m.values[i * m.cols + j]);
      rows.push_back(std::move(row));
    }
    ++sum.requests_written;
    sum.first_ts_us = sum.first_ts_us == 0 ? r.ts_us : std::min(sum.first_ts_us, r.ts_us);
    sum.last_ts_us = std::max(sum.last_ts_us, r.ts_us);
  }
  if (rows.empty()) {
    return absl::NotFoundError(StrCat(sum.sampled, " sampled requests and none exportable: ", sum.multiple_arm_units,
                                      " of units seen in two arms, ", sum.maturing,
                                      " of units younger than the attribution window, ", sum.unreadable, " unreadable",
                                      first_error.empty() ? "" : StrCat(" (", first_error, ")")));
  }
  sum.first_unreadable = first_error;
  sum.features = feature_names;
  sum.rows = static_cast<int64_t>(rows.size());
  for (const Row& row : rows) {
    ++sum.rows_by_arm[row.request->arm];
    sum.labelled_rows += row.labels->by_request ? 1 : 0;
  }

  // 6. Write to a temporary file beside the output, then rename it into place.
  const fs::path out_path(o.output);
  const fs::path tmp = out_path.parent_path() / StrCat(".", out_path.filename().string(), ".tmp-", NowUs());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return absl::PermissionDeniedError(StrCat("cannot write ", tmp.string()));
    const std::string bias =
        "rows were served, and ranked, by the model in force: the data over-represents what that model chose. Weight a "
        "row by 1/assignment_probability to undo the arm split; rank says where the served model put the instance.";
    if (o.format == ExportFormat::kCsv) {
      out << "# abgate export training-data: one row per scored instance of a sampled request\n";
      if (!o.command_line.empty()) out << "# command: " << o.command_line << "\n";
      out << "# store: " << o.store << "  experiment: " << o.experiment
          << "  since: " << (o.since_us > 0 ? HumanUtc(o.since_us) : std::string("the start"))
          << "  arm: " << (o.arm.empty() ? std::string("all") : o.arm) << "\n";
      out << "# created: " << HumanUtc(sum.created_us) << "  exposures from " << HumanUtc(sum.first_ts_us)
          << " to " << HumanUtc(sum.last_ts_us) << "\n";
      out << "# exposures: " << sum.exposures << " in the experiment; sampled " << sum.sampled << "; unsampled "
          << sum.unsampled << " (no stored payload: counted, not written)\n";
      out << "# left out: " << sum.multiple_arm_units << " of units seen in two arms, " << sum.maturing
          << " of units younger than the attribution window, " << sum.unreadable << " unreadable payloads"
          << (sum.first_unreadable.empty() ? "" : StrCat(" (first: ", OneLine(sum.first_unreadable), ")")) << "\n";
      out << "# written: " << sum.requests_written << " requests, " << sum.rows << " rows (" << sum.labelled_rows
          << " named by an outcome)\n";
      out << "# features: " << Join(feature_names, ",") << "\n";
      out << "# labels: " << Join(sum.labels, ",")
          << " (attributed as abgate analyze attributes them: the request's outcomes when one named it, else its "
             "unit's, within the attribution window; label_source says which)\n";
      out << "# assignment_probability: " << sum.assignment_probability_source << "\n";
      out << "# bias: " << bias << "\n";
      json::object head = sum.ToJson();  // the same, for programs (abgate train reads it)
      head["arm"] = o.arm;
      out << "# abgate_export: " << config::ToJson(head) << "\n";
      std::vector<std::string> header = meta;
      header.insert(header.end(), feature_names.begin(), feature_names.end());
      header.insert(header.end(), sum.labels.begin(), sum.labels.end());
      for (size_t i = 0; i < header.size(); ++i) out << (i ? "," : "") << CsvField(header[i]);
      out << "\n";
    } else {
      json::object head = sum.ToJson();
      head["command"] = o.command_line;
      head["arm"] = o.arm;
      head["bias"] = bias;
      json::array m;
      for (const auto& c : meta) m.push_back(json::value(c));
      head["meta_columns"] = std::move(m);
      out << config::ToJson(json::object{{"abgate_export", std::move(head)}}) << "\n";
    }
    std::vector<float> values(feature_names.size());
    for (const Row& row : rows) {
      std::fill(values.begin(), values.end(), std::numeric_limits<float>::quiet_NaN());
      for (const auto& [j, v] : row.features) values[j] = v;
      const events::ServedRequest& r = *row.request;
      const std::string source = row.labels->by_request ? "request" : "unit";
      if (o.format == ExportFormat::kCsv) {
        out << CsvField(r.request_id) << ',' << r.ts_us << ',' << CsvField(r.unit_id) << ',' << CsvField(r.arm)
            << ',' << CsvField(r.assigned_arm) << ',' << CsvField(r.model_name) << ',' << CsvField(r.model_version) << ','
            << CsvField(r.routing_mode) << ',' << row.instance << ',' << row.rank << ',' << FormatNumber(row.prediction)
            << ',' << FormatNumber(row.probability) << ',' << source;
        for (float v : values) out << ',' << FormatFloat(v);
        for (double v : row.labels->values) out << ',' << FormatNumber(v);
        out << '\n';
      } else {
        json::object obj{{"request_id", r.request_id},     {"ts_us", r.ts_us},
                         {"unit_id", r.unit_id}, {"arm", r.arm},
                         {"assigned_arm", r.assigned_arm}, {"model_name", r.model_name},
                         {"model_version", r.model_version}, {"routing_mode", r.routing_mode},
                         {"instance", row.instance},        {"rank", row.rank}};
        obj["prediction"] = std::isnan(row.prediction) ? json::value(nullptr) : json::value(row.prediction);
        obj["assignment_probability"] = std::isnan(row.probability) ? json::value(nullptr) : json::value(row.probability);
        obj["label_source"] = source;
        for (size_t j = 0; j < values.size(); ++j) {
          // The float32 the model saw, printed as its shortest decimal (180.2, not 180.1999969).
          obj[feature_names[j]] = std::isnan(values[j]) ? json::value(nullptr) : json::value(ParseDouble(FormatFloat(values[j])));
        }
        for (size_t j = 0; j < sum.labels.size(); ++j) obj[sum.labels[j]] = row.labels->values[j];
        out << config::ToJson(obj) << '\n';
      }
    }
    out.flush();
    if (!out) {
      fs::remove(tmp, ec);
      return absl::ResourceExhaustedError(StrCat("cannot write ", tmp.string()));
    }
  }
  fs::rename(tmp, out_path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return absl::PermissionDeniedError(StrCat("cannot move the export into place at ", o.output));
  }
  return sum;
}

}  // namespace abgate::feedback
