#include "feedback/retrain.h"

#include <chrono>
#include <filesystem>

#include "common/human.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "feedback/export_training.h"
#include "feedback/training_export.h"
#include "registry/mlflow_client.h"

namespace abgate::feedback {

namespace fs = std::filesystem;

absl::StatusOr<control::RetrainResult> Retrain(const control::RetrainRequest& req) {
  const config::RetrainConfig& rc = req.config;
  std::error_code ec;
  fs::create_directories(rc.data_dir, ec);
  if (ec) return absl::PermissionDeniedError(StrCat("cannot create ", rc.data_dir, ": ", ec.message()));
  const int64_t now_us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  const fs::path file = fs::path(rc.data_dir) / StrCat(req.experiment, "-since-", req.since_us, "-", now_us, ".csv");
  ExportOptions e;
  e.store = req.store;
  e.experiment = req.experiment;
  e.since_us = req.since_us;
  e.output = file.string();
  e.registry_uri = req.registry_uri;
  e.model_cache_dir = (fs::path(rc.data_dir) / "model-cache").string();
  e.command_line = StrCat("abgate controller (retrain ", rc.model, ")");
  auto exported = ExportTrainingData(e);
  if (!exported.ok()) {
    if (exported.status().code() == absl::StatusCode::kNotFound) {
      return absl::FailedPreconditionError(StrCat("no new labelled rows in ", req.experiment,
                                                  req.since_us > 0 ? StrCat(" since ", HumanUtc(req.since_us)) : "",
                                                  " (", exported.status().message(), ")"));
    }
    return exported.status();
  }
  TrainingOptions t;
  t.label = req.label;
  t.top_ranked_only = rc.top_ranked_only;
  t.inverse_probability_weights = rc.inverse_probability_weights;
  t.rounds = rc.rounds;
  t.params = rc.params;
  auto data = ReadTrainingData(file.string(), t);
  if (!data.ok() || data->rows < rc.min_new_labels) {
    fs::remove(file, ec);  // ours, and not enough to keep
    if (!data.ok()) return data.status();
    return absl::FailedPreconditionError(StrCat(data->rows, " new labelled rows in ", req.experiment, ", ",
                                                rc.min_new_labels, " needed (min_new_labels)"));
  }
  ABGATE_ASSIGN_OR_RETURN(TrainedOnExport trained, TrainOnData(*data, t));
  ABGATE_ASSIGN_OR_RETURN(auto client, registry::MlflowClient::Create(registry::MlflowClientOptions::ForUri(req.registry_uri)));
  serving::RunRecord record = RunRecordFor(file.string(), *data, trained, t, req.tracking_experiment, rc.model);
  record.run_tags["abgate.retrain"] = "controller";
  serving::ModelSignature signature{data->features, {}};
  const size_t cols = data->features.size();
  signature.example.assign(data->x.begin(),
                           data->x.begin() + static_cast<std::ptrdiff_t>(std::min<int64_t>(2, data->rows) * static_cast<int64_t>(cols)));
  registry::TagMap tags = {{req.candidate_tag, "true"},
                           {"abgate.trained_on", StrCat(req.experiment, " (", data->rows, " rows)")}};
  ABGATE_ASSIGN_OR_RETURN(serving::Registration reg,
                          serving::LogAndRegisterModel(*client, trained.booster, signature, record, rc.model, tags, "xgb"));
  control::RetrainResult out;
  out.version = reg.version;
  out.run_id = reg.run_id;
  out.export_file = file.string();
  out.rows = data->rows;
  out.until_us = exported->last_ts_us;
  out.summary = StrCat("v", reg.version, " trained on ", data->rows, " rows (", exported->exposures, " exposures, ",
                       exported->unsampled, " unsampled; ", HumanUtc(exported->first_ts_us), " to ",
                       HumanUtc(exported->last_ts_us), "), holdout AUC ",
                       trained.holdout_auc ? StrCat(static_cast<double>(static_cast<int64_t>(*trained.holdout_auc * 1000)) / 1000)
                                           : std::string("n/a"),
                       ", tagged ", req.candidate_tag, "=true");
  return out;
}

}  // namespace abgate::feedback
