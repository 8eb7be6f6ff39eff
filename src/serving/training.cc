#include "serving/training.h"

#include <chrono>
#include <cmath>
#include <ctime>
#include <fstream>
#include <random>
#include <sstream>

#include <boost/json.hpp>

#include "common/random.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "config/json_format.h"
#include "stats/model_quality.h"

namespace abgate::serving {
namespace json = boost::json;
namespace fs = std::filesystem;

const std::vector<std::string>& BookingColumns() {
  static const std::vector<std::string> kColumns = {"lead_time_days", "nightly_price", "length_of_stay", "is_weekend",
                                                    "loyalty_tier",   "prior_bookings", "mobile",        "search_rank"};
  return kColumns;
}

double BookingProbability(const float* r) {
  const double lead = r[0], price = r[1], stay = r[2], weekend = r[3], loyalty = r[4], prior = r[5], mobile = r[6],
               rank = r[7];
  const double logit = -1.2 - 0.006 * lead - 0.005 * (price - 250) + 0.8 * loyalty + 0.25 * std::min(prior, 6.0) -
                       0.16 * (rank - 1) + 0.1 * std::min(stay, 7.0) + 1.2 * mobile * (lead < 14 ? 1 : 0) -
                       0.8 * weekend * (price > 400 ? 1 : 0);
  return 1.0 / (1.0 + std::exp(-logit));
}

BookingData GenerateBookings(int64_t rows, uint64_t seed) {
  common::Xoshiro256 rng(seed);
  std::uniform_real_distribution<double> u01(0, 1);
  std::poisson_distribution<int> poisson(2.0);
  BookingData d;
  d.rows = rows;
  d.features.reserve(rows * 8);
  for (int64_t i = 0; i < rows; ++i) {
    float row[8];
    row[0] = static_cast<float>(std::floor(u01(rng) * 366));
    row[1] = static_cast<float>(std::round((60 + u01(rng) * 540) * 100) / 100);
    row[2] = static_cast<float>(1 + rng() % 14);
    row[3] = u01(rng) < 0.3 ? 1.f : 0.f;
    row[4] = static_cast<float>(rng() % 4);
    row[5] = static_cast<float>(poisson(rng));
    row[6] = u01(rng) < 0.5 ? 1.f : 0.f;
    row[7] = static_cast<float>(1 + rng() % 20);
    const double p = BookingProbability(row);
    d.features.insert(d.features.end(), row, row + 8);
    d.true_probability.push_back(p);
    d.labels.push_back(u01(rng) < p ? 1.f : 0.f);
  }
  return d;
}

absl::StatusOr<TrainedModel> TrainBookingModel(ModelQuality quality, uint64_t seed, int64_t rows) {
  BookingData train = GenerateBookings(rows, seed);
  const bool strong = quality == ModelQuality::kStrong;
  if (!strong) {
    // Only lead time and price stay informative: every other column is missing in training, so
    // no tree splits on it and at serving time those columns are ignored.
    for (int64_t i = 0; i < train.rows; ++i) {
      for (int j = 2; j < 8; ++j) train.features[i * 8 + j] = NAN;
    }
  }
  TrainedModel out;
  out.params = {{"objective", "binary:logistic"}, {"eval_metric", "auc"}, {"nthread", "1"},
                {"seed", std::to_string(seed % 100000)}, {"max_depth", strong ? "4" : "2"}, {"eta", strong ? "0.2" : "0.3"},
                {"subsample", "1"}};
  out.rounds = strong ? 60 : 10;
  ABGATE_ASSIGN_OR_RETURN(out.booster, Booster::Train(train.features, train.rows, 8, train.labels, out.params, out.rounds));
  ABGATE_RETURN_IF_ERROR(out.booster.SetFeatureNames(BookingColumns()));
  // Holdout quality on fresh data from the same process.
  BookingData holdout = GenerateBookings(5000, seed ^ 0x9E3779B97F4A7C15ULL);
  ABGATE_ASSIGN_OR_RETURN(auto preds, out.booster.Predict(holdout.features.data(), holdout.rows, 8));
  std::vector<double> scores(preds.begin(), preds.end());
  std::vector<int> labels(holdout.labels.begin(), holdout.labels.end());
  ABGATE_ASSIGN_OR_RETURN(auto auc, stats::ComputeAuc(scores, labels));
  out.holdout_auc = auc.value;
  ABGATE_ASSIGN_OR_RETURN(out.holdout_log_loss, stats::LogLoss(scores, labels));
  return out;
}

namespace {

absl::Status WriteFile(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) return absl::UnavailableError(StrCat("cannot write ", path.string()));
  return absl::OkStatus();
}

std::string UtcNow() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
  char frac[16];
  std::snprintf(frac, sizeof(frac), ".%06lld", static_cast<long long>(us));
  return std::string(buf) + frac;
}

}  // namespace

ModelSignature BookingSignature() {
  const BookingData example = GenerateBookings(2, 1);
  return {BookingColumns(), example.features};
}

absl::Status WriteMlflowModel(const Booster& booster, const fs::path& folder, const std::string& format,
                              const std::string& run_id) {
  return WriteMlflowModel(booster, folder, format, run_id, BookingSignature());
}

absl::Status WriteMlflowModel(const Booster& booster, const fs::path& folder, const std::string& format,
                              const std::string& run_id, const ModelSignature& signature) {
  const std::string file = format == "xgb" ? "model.xgb" : (format == "json" ? "model.json" : "model.ubj");
  ABGATE_ASSIGN_OR_RETURN(std::string bytes, booster.Save(format));
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec) return absl::UnavailableError(StrCat("cannot create ", folder.string(), ": ", ec.message()));
  ABGATE_RETURN_IF_ERROR(WriteFile(folder / file, bytes));
  json::array inputs;
  for (const auto& c : signature.columns) inputs.push_back(json::object{{"type", "double"}, {"name", c}, {"required", true}});
  // JSON inside YAML single quotes: a quote is doubled.
  std::string inputs_text = config::ToJson(inputs);
  for (size_t pos = 0; (pos = inputs_text.find('\'', pos)) != std::string::npos; pos += 2) inputs_text.insert(pos, 1, '\'');
  for (size_t pos = 0; (pos = inputs_text.find("\",\"", pos)) != std::string::npos;) inputs_text.replace(pos, 3, "\", \"");
  common::Xoshiro256 rng = common::Xoshiro256::FromEntropy();
  char uuid[33];
  std::snprintf(uuid, sizeof(uuid), "%016llx%016llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()));
  std::string mlmodel;
  if (!run_id.empty()) mlmodel += "artifact_path: model\n";
  StrAppend(&mlmodel,
            "flavors:\n"
            "  python_function:\n"
            "    data: ", file, "\n"
            "    env:\n"
            "      conda: conda.yaml\n"
            "      virtualenv: python_env.yaml\n"
            "    loader_module: mlflow.xgboost\n"
            "    python_version: 3.11.2\n"
            "  xgboost:\n"
            "    code: null\n"
            "    data: ", file, "\n"
            "    model_class: xgboost.core.Booster\n"
            "    model_format: ", format, "\n"
            "    xgb_version: 1.7.4\n"
            "mlflow_version: 2.17.2\n"
            "model_size_bytes: ", static_cast<int64_t>(bytes.size()), "\n"
            "model_uuid: ", uuid, "\n");
  if (!run_id.empty()) StrAppend(&mlmodel, "run_id: ", run_id, "\n");
  StrAppend(&mlmodel,
            "saved_input_example_info:\n"
            "  artifact_path: input_example.json\n"
            "  pandas_orient: split\n"
            "  serving_input_path: serving_input_example.json\n"
            "  type: dataframe\n"
            "signature:\n"
            "  inputs: '", inputs_text, "'\n"
            "  outputs: '[{\"type\": \"tensor\", \"tensor-spec\": {\"dtype\": \"float32\", \"shape\": [-1]}}]'\n"
            "  params: null\n"
            "utc_time_created: '", UtcNow(), "'\n");
  ABGATE_RETURN_IF_ERROR(WriteFile(folder / "MLmodel", mlmodel));
  ABGATE_RETURN_IF_ERROR(WriteFile(folder / "conda.yaml",
                                   "channels:\n- conda-forge\ndependencies:\n- python=3.11.2\n- pip<=23.0.1\n- pip:\n"
                                   "  - mlflow==2.17.2\n  - numpy\n  - pandas\n  - xgboost==1.7.4\nname: mlflow-env\n"));
  ABGATE_RETURN_IF_ERROR(WriteFile(folder / "python_env.yaml",
                                   "python: 3.11.2\nbuild_dependencies:\n- pip==23.0.1\n- setuptools\n- wheel\n"
                                   "dependencies:\n- -r requirements.txt\n"));
  ABGATE_RETURN_IF_ERROR(WriteFile(folder / "requirements.txt", "mlflow==2.17.2\nnumpy\npandas\nxgboost==1.7.4\n"));
  const size_t width = signature.columns.size();
  json::array rows;
  for (size_t i = 0; width > 0 && (i + 1) * width <= signature.example.size(); ++i) {
    json::array row;
    for (size_t j = 0; j < width; ++j) {
      const float v = signature.example[i * width + j];
      row.push_back(std::isnan(v) ? json::value(nullptr) : json::value(static_cast<double>(v)));
    }
    rows.push_back(std::move(row));
  }
  json::array columns;
  for (const auto& c : signature.columns) columns.push_back(json::value(c));
  const json::object split{{"columns", columns}, {"data", rows}};
  ABGATE_RETURN_IF_ERROR(WriteFile(folder / "input_example.json", config::ToJson(split)));
  return WriteFile(folder / "serving_input_example.json", config::ToJson(json::object{{"dataframe_split", split}}));
}

absl::StatusOr<Registration> LogAndRegister(registry::MlflowClient& client, const TrainedModel& trained,
                                            ModelQuality quality, uint64_t seed, const std::string& experiment,
                                            const std::string& model_name, const registry::TagMap& tags,
                                            const std::string& format) {
  const std::string quality_name = quality == ModelQuality::kStrong ? "strong" : "weak";
  RunRecord record;
  record.experiment = experiment;
  record.run_name = StrCat("train-", model_name, "-", quality_name);
  record.run_tags = {{"mlflow.source.name", "abgate train"}, {"quality", quality_name}};
  for (const auto& [k, v] : trained.params) record.params[k] = v;
  record.params["num_boost_round"] = std::to_string(trained.rounds);
  record.params["data_seed"] = std::to_string(seed);
  record.params["features"] = quality == ModelQuality::kStrong ? "all" : "lead_time_days,nightly_price";
  record.metrics = {{"holdout_auc", trained.holdout_auc}, {"holdout_log_loss", trained.holdout_log_loss}};
  return LogAndRegisterModel(client, trained.booster, BookingSignature(), record, model_name, tags, format);
}

absl::StatusOr<Registration> LogAndRegisterModel(registry::MlflowClient& client, const Booster& booster,
                                                 const ModelSignature& signature, const RunRecord& record,
                                                 const std::string& model_name, const registry::TagMap& tags,
                                                 const std::string& format) {
  ABGATE_ASSIGN_OR_RETURN(std::string experiment_id, client.GetOrCreateExperiment(record.experiment));
  ABGATE_ASSIGN_OR_RETURN(registry::RunHandle run, client.CreateRun(experiment_id, record.run_name, record.run_tags));
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  std::vector<registry::Metric> metrics;
  for (const auto& [k, v] : record.metrics) metrics.push_back({k, v, now_ms, 0});
  ABGATE_RETURN_IF_ERROR(client.LogBatch(run.run_id, metrics, record.params, {}));
  // Write the folder locally, then upload each file as the MLflow client does (one PUT each).
  const fs::path tmp = fs::temp_directory_path() / StrCat("abgate-train-", run.run_id);
  ABGATE_RETURN_IF_ERROR(WriteMlflowModel(booster, tmp, format, run.run_id, signature));
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(tmp, ec)) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    absl::Status s = client.UploadArtifact(run.artifact_uri, StrCat("model/", entry.path().filename().string()), bytes.str());
    if (!s.ok()) {
      fs::remove_all(tmp, ec);
      return s;
    }
  }
  fs::remove_all(tmp, ec);
  json::object flavors{{"xgboost", json::object{{"model_format", format}, {"xgb_version", "1.7.4"}}},
                       {"python_function", json::object{{"loader_module", "mlflow.xgboost"}}}};
  ABGATE_RETURN_IF_ERROR(client.LogModel(run.run_id, json::object{{"artifact_path", "model"},
                                                                  {"flavors", flavors},
                                                                  {"utc_time_created", UtcNow()},
                                                                  {"run_id", run.run_id}}));
  ABGATE_RETURN_IF_ERROR(client.EnsureRegisteredModel(model_name));
  const std::string source = StrCat(run.artifact_uri, "/model");
  ABGATE_ASSIGN_OR_RETURN(registry::ModelVersion v, client.CreateModelVersion(model_name, source, run.run_id, tags));
  ABGATE_RETURN_IF_ERROR(client.SetTerminated(run.run_id, "FINISHED"));
  return Registration{run.run_id, std::to_string(v.version), source};
}

}  // namespace abgate::serving
