#include "feedback/export_training.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <set>

#include <boost/json.hpp>

#include "common/csv.h"
#include "common/hash64.h"
#include "common/human.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "config/json_format.h"
#include "feedback/training_export.h"
#include "stats/model_quality.h"

namespace abgate::feedback {
namespace {

namespace json = boost::json;
constexpr float kMissing = std::numeric_limits<float>::quiet_NaN();

// One cell as a number: empty / null / non-numeric text is missing.
float Number(std::string_view cell, bool* ok = nullptr) {
  double v = 0;
  if (ok) *ok = false;
  if (cell.empty()) return kMissing;
  auto [p, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), v);
  if (ec != std::errc() || p != cell.data() + cell.size() || !std::isfinite(v)) return kMissing;
  if (ok) *ok = true;
  return static_cast<float>(v);
}

// A file read into named string cells, whatever its format.
struct Table {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;  // cells in `columns` order ("" = missing)
  json::object provenance;
};

std::string CellOf(const json::value& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_bool()) return v.as_bool() ? "1" : "0";
  if (v.is_number()) return config::ToJson(v);
  return "";
}

absl::StatusOr<Table> ReadTable(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(StrCat("cannot open ", path));
  Table t;
  std::string line;
  bool jsonl = false, first = true;
  std::map<std::string, size_t> index;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (first) {
      jsonl = line.front() == '{';
      first = false;
    }
    if (jsonl) {
      boost::system::error_code ec;
      json::value v = json::parse(line, ec);
      if (ec || !v.is_object()) return absl::InvalidArgumentError(StrCat(path, ": a line is not a JSON object"));
      const json::object& o = v.as_object();
      if (const json::value* head = o.if_contains("abgate_export"); head && head->is_object() && t.rows.empty()) {
        t.provenance = head->as_object();
        continue;
      }
      std::vector<std::string> row(t.columns.size());
      for (const auto& [k, val] : o) {
        auto [it, inserted] = index.try_emplace(std::string(k), t.columns.size());
        if (inserted) {
          t.columns.emplace_back(k);
          for (auto& r : t.rows) r.emplace_back();
          row.emplace_back();
        }
        row[it->second] = CellOf(val);
      }
      t.rows.push_back(std::move(row));
      continue;
    }
    if (line.front() == '#') {
      constexpr std::string_view kHead = "# abgate_export: ";
      if (line.starts_with(kHead)) {
        boost::system::error_code ec;
        json::value v = json::parse(std::string_view(line).substr(kHead.size()), ec);
        if (!ec && v.is_object()) t.provenance = v.as_object();
      }
      continue;
    }
    std::vector<std::string> cells = common::SplitCsvRecord(line);
    if (t.columns.empty()) {
      t.columns = std::move(cells);
      continue;
    }
    cells.resize(t.columns.size());
    t.rows.push_back(std::move(cells));
  }
  if (t.columns.empty() || t.rows.empty()) return absl::InvalidArgumentError(StrCat(path, " has no rows"));
  return t;
}

const std::vector<std::pair<std::string, std::string>>& DefaultParams() {
  static const auto* params = new std::vector<std::pair<std::string, std::string>>{
      {"objective", "binary:logistic"}, {"eval_metric", "auc"}, {"nthread", "1"}, {"seed", "1"},
      {"max_depth", "4"},               {"eta", "0.2"},         {"subsample", "1"}};
  return *params;
}

bool InHoldout(const std::string& group, double fraction) {
  return static_cast<double>(common::Hash64(group) % 10000) < fraction * 10000;
}

}  // namespace

absl::StatusOr<TrainingData> ReadTrainingData(const std::string& path, const TrainingOptions& o) {
  if (o.label.empty()) return absl::InvalidArgumentError("a label column is required (--label)");
  ABGATE_ASSIGN_OR_RETURN(Table t, ReadTable(path));
  auto column = [&](const std::string& name) -> int {
    auto it = std::find(t.columns.begin(), t.columns.end(), name);
    return it == t.columns.end() ? -1 : static_cast<int>(it - t.columns.begin());
  };
  TrainingData d;
  d.provenance = t.provenance;
  const int label = column(o.label);
  if (label < 0) return absl::InvalidArgumentError(StrCat(path, " has no column '", o.label, "'"));
  // Features: given, else the export's header, else every column that is not metadata, a label
  // of the export, or the label, and holds numbers.
  d.features = o.features;
  if (d.features.empty()) {
    if (const json::value* f = t.provenance.if_contains("features"); f && f->is_array()) {
      for (const auto& x : f->as_array()) {
        if (x.is_string()) d.features.emplace_back(x.as_string());
      }
    }
  }
  if (d.features.empty()) {
    std::set<std::string> skip(ExportMetaColumns().begin(), ExportMetaColumns().end());
    skip.insert(o.label);
    for (size_t j = 0; j < t.columns.size(); ++j) {
      if (skip.contains(t.columns[j])) continue;
      bool numeric = false;
      for (const auto& r : t.rows) {
        bool ok = false;
        Number(r[j], &ok);
        if (ok) numeric = true;
      }
      if (numeric) d.features.push_back(t.columns[j]);
    }
  }
  if (d.features.empty()) return absl::InvalidArgumentError(StrCat(path, ": no feature columns"));
  std::vector<int> feature_columns;
  for (const auto& f : d.features) {
    const int j = column(f);
    if (j < 0) return absl::InvalidArgumentError(StrCat(path, " has no feature column '", f, "'"));
    if (j == label) return absl::InvalidArgumentError(StrCat("the label '", o.label, "' cannot be a feature"));
    feature_columns.push_back(j);
  }
  const int rank = column("rank");
  const int probability = column("assignment_probability");
  int group = column("unit_id");
  const int request = column("request_id");
  const bool weighted = o.inverse_probability_weights && probability >= 0;
  for (const auto& r : t.rows) {
    if (o.top_ranked_only && rank >= 0 && r[rank] != "1") {
      ++d.skipped_rank;
      continue;
    }
    bool ok = false;
    const float y = Number(r[label], &ok);
    if (!ok) {
      ++d.skipped_no_label;
      continue;
    }
    if (y != 0 && y != 1) {
      return absl::InvalidArgumentError(StrCat("label '", o.label, "' must be 0 or 1 (binary:logistic); found ", r[label]));
    }
    for (int j : feature_columns) d.x.push_back(Number(r[j]));
    d.y.push_back(y);
    if (weighted) {
      const float p = Number(r[probability]);
      d.weight.push_back(std::isnan(p) || p <= 0 ? 1.f : 1.f / p);
    }
    std::string g = group >= 0 && !r[group].empty() ? r[group] : (request >= 0 ? r[request] : "");
    if (g.empty()) g = std::to_string(d.rows);
    d.group.push_back(std::move(g));
    ++d.rows;
  }
  if (d.rows == 0) {
    return absl::InvalidArgumentError(StrCat(path, ": no row with a 0/1 '", o.label, "' (", d.skipped_no_label,
                                             " without, ", d.skipped_rank, " not ranked first)"));
  }
  return d;
}

absl::StatusOr<TrainedOnExport> TrainOnData(const TrainingData& d, const TrainingOptions& o) {
  if (!(o.holdout_fraction >= 0 && o.holdout_fraction < 1)) {
    return absl::InvalidArgumentError("the holdout fraction must be in [0, 1)");
  }
  if (o.rounds <= 0) return absl::InvalidArgumentError("rounds must be positive");
  const size_t cols = d.features.size();
  std::vector<float> tx, ty, tw, hx;
  std::vector<int> hy;
  for (int64_t i = 0; i < d.rows; ++i) {
    const bool holdout = InHoldout(d.group[i], o.holdout_fraction);
    const float* row = d.x.data() + i * cols;
    if (holdout) {
      hx.insert(hx.end(), row, row + cols);
      hy.push_back(static_cast<int>(d.y[i]));
    } else {
      tx.insert(tx.end(), row, row + cols);
      ty.push_back(d.y[i]);
      if (!d.weight.empty()) tw.push_back(d.weight[i]);
    }
  }
  if (ty.empty()) return absl::InvalidArgumentError("no rows left to train on after the holdout split");
  TrainedOnExport out;
  out.params = DefaultParams();
  for (const auto& [k, v] : o.params) {
    // An init-capture: clang 14 cannot capture a structured binding itself (fuzz/sanitizer builds).
    auto it = std::find_if(out.params.begin(), out.params.end(), [&key = k](const auto& p) { return p.first == key; });
    if (it != out.params.end()) {
      it->second = v;
    } else {
      out.params.emplace_back(k, v);
    }
  }
  out.rounds = o.rounds;
  out.train_rows = static_cast<int64_t>(ty.size());
  out.holdout_rows = static_cast<int64_t>(hy.size());
  ABGATE_ASSIGN_OR_RETURN(out.booster, serving::Booster::Train(tx, out.train_rows, static_cast<int64_t>(cols), ty,
                                                               out.params, out.rounds, tw));
  ABGATE_RETURN_IF_ERROR(out.booster.SetFeatureNames(d.features));
  if (!hy.empty()) {
    ABGATE_ASSIGN_OR_RETURN(auto preds, out.booster.Predict(hx.data(), out.holdout_rows, static_cast<int64_t>(cols)));
    std::vector<double> scores(preds.begin(), preds.end());
    int64_t positives = 0;
    for (int y : hy) positives += y;
    out.holdout_positive_rate = static_cast<double>(positives) / static_cast<double>(hy.size());
    if (auto auc = stats::ComputeAuc(scores, hy); auc.ok()) out.holdout_auc = auc->value;
    if (auto ll = stats::LogLoss(scores, hy); ll.ok()) out.holdout_log_loss = *ll;
  }
  return out;
}

serving::RunRecord RunRecordFor(const std::string& path, const TrainingData& d, const TrainedOnExport& t,
                                const TrainingOptions& o, const std::string& tracking_experiment,
                                const std::string& model_name) {
  serving::RunRecord r;
  r.experiment = tracking_experiment;
  r.run_name = StrCat("train-", model_name, "-on-export");
  r.run_tags = {{"mlflow.source.name", "abgate train --data"}, {"abgate.training_data.file", path}};
  for (const auto& [k, v] : t.params) r.params[k] = v;
  r.params["num_boost_round"] = std::to_string(t.rounds);
  r.params["label"] = o.label;
  std::string features;
  for (const auto& f : d.features) StrAppend(&features, features.empty() ? "" : ",", f);
  r.params["features"] = features.substr(0, 6000);
  r.params["weighting"] = d.weight.empty() ? "none" : "1/assignment_probability";
  r.params["top_ranked_only"] = o.top_ranked_only ? "true" : "false";
  r.params["holdout_fraction"] = StrCat(o.holdout_fraction);
  // Which export this generation learnt from.
  auto text = [](const json::value* v) { return v ? (v->is_string() ? std::string(v->as_string()) : config::ToJson(*v)) : ""; };
  for (const char* key : {"experiment", "store", "arm", "since_us", "first_ts_us", "last_ts_us", "created_us", "exposures",
                          "sampled", "unsampled", "rows"}) {
    if (const json::value* v = d.provenance.if_contains(key)) r.run_tags[StrCat("abgate.training_data.", key)] = text(v);
  }
  if (const json::value* v = d.provenance.if_contains("first_ts_us"); v && v->is_int64()) {
    const json::value* last = d.provenance.if_contains("last_ts_us");
    r.run_tags["abgate.training_data.range"] =
        StrCat(HumanUtc(v->as_int64()), " to ", last && last->is_int64() ? HumanUtc(last->as_int64()) : "?");
  }
  r.metrics = {{"train_rows", static_cast<double>(t.train_rows)},
               {"holdout_rows", static_cast<double>(t.holdout_rows)},
               {"holdout_positive_rate", t.holdout_positive_rate}};
  if (t.holdout_auc) r.metrics.emplace_back("holdout_auc", *t.holdout_auc);
  if (t.holdout_log_loss) r.metrics.emplace_back("holdout_log_loss", *t.holdout_log_loss);
  return r;
}

}  // namespace abgate::feedback
