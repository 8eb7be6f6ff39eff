// Booster: RAII over one XGBoost 1.7 C-API booster, for prediction and training.
//
// XGBoost keeps the last error and the prediction output buffer per thread and per booster, so a
// Booster is NOT thread-safe: one thread uses it at a time, and Predict copies the output before
// returning (call, error check and copy together). Predictor (predictor.h) gives each worker
// thread its own Booster loaded from the same bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace abgate::serving {

class Booster {
 public:
  // Loads a model in any of XGBoost's formats (legacy binary, JSON, UBJSON: detected from the
  // bytes, not the file name).
  static absl::StatusOr<Booster> FromBytes(std::string_view bytes);
  static absl::StatusOr<Booster> FromFile(const std::string& path);
  // Trains binary:logistic on row-major `features` (rows × cols) and 0/1 `labels`, each row
  // weighted by `weights` when given (one per row; empty: all 1).
  // `params` are XGBoost parameters ("max_depth" → "4"); nthread=1 keeps it deterministic.
  static absl::StatusOr<Booster> Train(const std::vector<float>& features, int64_t rows, int64_t cols,
                                       const std::vector<float>& labels,
                                       const std::vector<std::pair<std::string, std::string>>& params, int rounds,
                                       const std::vector<float>& weights = {});

  Booster() = default;  // empty: only assignable
  Booster(Booster&& other) noexcept;
  Booster& operator=(Booster&& other) noexcept;
  ~Booster();

  // Predictions for row-major float32 rows (NaN = missing); one value per row for
  // binary:logistic. InvalidArgument when `cols` differs from the model's feature count.
  absl::StatusOr<std::vector<float>> Predict(const float* rows, int64_t n_rows, int64_t cols);
  int64_t num_features() const { return num_features_; }
  // Serialises in XGBoost's legacy binary format ("xgb", what MLflow writes by default),
  // "json" or "ubj".
  absl::StatusOr<std::string> Save(std::string_view format) const;
  absl::Status SetFeatureNames(const std::vector<std::string>& names);

 private:
  explicit Booster(void* handle);
  void* handle_ = nullptr;
  int64_t num_features_ = 0;
};

}  // namespace abgate::serving
