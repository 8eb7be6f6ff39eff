// MlflowModel: what an MLflow model folder says about itself (its `MLmodel` YAML, MLFLOW.md §8):
// the xgboost flavor's data file and format, the model class, and the input signature that
// scoring requests are checked against. Pure file reading; no XGBoost here.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace abgate::serving {

struct ColumnSpec {
  std::string name;
  std::string type;  // MLflow's: double, float, long, integer, boolean
  bool required = true;
};

struct MlflowModel {
  std::filesystem::path folder;
  std::filesystem::path data_file;  // folder / flavors.xgboost.data
  std::string model_format;        // xgb | json | ubj
  std::string model_class;         // xgboost.core.Booster, xgboost.sklearn.XGBClassifier, ...
  std::vector<ColumnSpec> inputs;  // empty when the model has no column signature
  std::string run_id;
  std::string mlflow_version;
  // pyfunc predict of a scikit-learn classifier returns class labels, not probabilities.
  bool predicts_labels() const { return model_class.find("XGBClassifier") != std::string::npos; }
};

// Reads `folder/MLmodel`. Errors name what was found: a missing file, a folder whose flavors
// include no xgboost ("found flavors: python_function, sklearn"), a data file that is not there,
// or a signature column abgate cannot feed to XGBoost (strings, tensors).
absl::StatusOr<MlflowModel> ReadMlflowModel(const std::filesystem::path& folder);

}  // namespace abgate::serving
