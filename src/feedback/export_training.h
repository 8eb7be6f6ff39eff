// Training on an export (`abgate train --data FILE --label NAME`, and the controller's retrain):
// reads a file `abgate export training-data` wrote (CSV or JSON lines; a plain CSV with a header
// row works too), trains the XGBoost booster (binary:logistic) on its feature columns with a
// holdout split by unit (no unit on both sides), and says what it was trained on, so the run
// that registers the model can record the export (experiment, time range, rows).
// Thread-compatible values; training runs on the calling thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>

#include "absl/status/statusor.h"
#include "registry/mlflow_client.h"
#include "serving/booster.h"
#include "serving/training.h"

namespace abgate::feedback {

struct TrainingOptions {
  std::string label;                  // the label column (0/1)
  std::vector<std::string> features;  // empty: the export's (its header), else every numeric non-meta column
  bool inverse_probability_weights = true;  // weight rows by 1/assignment_probability when the file has it
  bool top_ranked_only = false;       // only rows the served model ranked first (rank = 1)
  double holdout_fraction = 0.2;      // share of units held out for the metrics
  int rounds = 60;
  std::vector<std::pair<std::string, std::string>> params;  // XGBoost parameters over the defaults
};

struct TrainingData {
  std::vector<std::string> features;
  std::vector<float> x;       // row-major
  std::vector<float> y;
  std::vector<float> weight;  // empty: unweighted
  std::vector<std::string> group;  // unit (or request) id of each row, for the split
  int64_t rows = 0;
  int64_t skipped_no_label = 0;  // rows without a 0/1 label
  int64_t skipped_rank = 0;      // rows left out by top_ranked_only
  boost::json::object provenance;  // the export's header ({} for a plain CSV)
};

// Reads `path`. InvalidArgument for a missing label or feature column, a label that is not
// 0/1, or a file without rows.
absl::StatusOr<TrainingData> ReadTrainingData(const std::string& path, const TrainingOptions& options);

struct TrainedOnExport {
  serving::Booster booster;
  std::vector<std::pair<std::string, std::string>> params;
  int rounds = 0;
  int64_t train_rows = 0, holdout_rows = 0;
  std::optional<double> holdout_auc, holdout_log_loss;  // nullopt: one class only in the holdout
  double holdout_positive_rate = 0;
};

// Trains on `data` (deterministic: nthread=1, fixed seed).
absl::StatusOr<TrainedOnExport> TrainOnData(const TrainingData& data, const TrainingOptions& options);

// The run of a model trained on `path`: params (XGBoost's, label, features, weighting), holdout
// metrics, and the export it came from as tags `abgate.training_data.*` (file, experiment,
// store, time range, rows, unsampled).
serving::RunRecord RunRecordFor(const std::string& path, const TrainingData& data, const TrainedOnExport& trained,
                                const TrainingOptions& options, const std::string& tracking_experiment,
                                const std::string& model_name);

}  // namespace abgate::feedback
